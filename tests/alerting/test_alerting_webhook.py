"""WebhookChannel against a real local HTTP server: the payload, retries, 4xx, timeouts."""

from __future__ import annotations

import time
from collections.abc import Callable

from alerting_support import BACKOFF, TIMEOUT, HttpRecorder

from shipyard.alerting import Alert, WebhookChannel

Server = Callable[..., HttpRecorder]


def channel(url: str, **options: object) -> WebhookChannel:
    config: dict[str, object] = {"url": url, "timeout": TIMEOUT, "backoff": BACKOFF, **options}
    return WebhookChannel.from_config(config)


def test_posts_slack_text_and_structured_alert(http_server: Server, alert: Alert) -> None:
    server = http_server(200)
    headers = {"Authorization": "Bearer t0ken"}
    delivery = channel(server.url, headers=headers).send(alert)
    assert delivery.ok and delivery.attempts == 1 and delivery.error is None
    [request] = server.requests
    assert request.path == "/hooks/alerts"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer t0ken"
    assert set(request.body) == {"text", "alert"}
    text = request.body["text"]
    assert text.startswith("[Shipyard critical] churn v3: psi drift on age\n")
    assert "Value: 0.3141" in text and "Threshold: 0.2" in text
    assert request.body["alert"] == {
        "id": "a1b2c3",
        "rule": "churn-psi",
        "severity": "critical",
        "model": "churn",
        "version": 3,
        "metric": "psi",
        "feature": "age",
        "value": 0.3141,
        "threshold": 0.2,
        "message": "PSI of age is above the critical threshold.",
        "created_at": "2024-05-01T12:00:00Z",
        "link": "http://127.0.0.1:8000/models/churn/3/drift",
    }


def test_500_is_retried_then_reported(http_server: Server, alert: Alert) -> None:
    server = http_server(500)
    delivery = channel(server.url, attempts=3).send(alert)
    assert not delivery.ok and delivery.attempts == 3 and len(server.requests) == 3
    assert delivery.error and "500" in delivery.error and "gave up after 3" in delivery.error


def test_recovers_after_a_500(http_server: Server, alert: Alert) -> None:
    server = http_server(500, 502, 200)
    delivery = channel(server.url, attempts=3).send(alert)
    assert delivery == delivery.__class__(ok=True, attempts=3, error=None)
    assert len(server.requests) == 3


def test_400_is_not_retried(http_server: Server, alert: Alert) -> None:
    server = http_server(400)
    delivery = channel(server.url, attempts=3).send(alert)
    assert not delivery.ok and delivery.attempts == 1 and len(server.requests) == 1
    assert delivery.error and "400" in delivery.error


def test_429_rate_limit_is_retried(http_server: Server, alert: Alert) -> None:
    server = http_server(429, 200)
    assert channel(server.url, attempts=2).send(alert).ok
    assert len(server.requests) == 2


def test_error_does_not_leak_the_url_secret(http_server: Server, alert: Alert) -> None:
    server = http_server(404)
    delivery = channel(server.url + "/T0/B0/secret", attempts=1).send(alert)
    assert delivery.error and "secret" not in delivery.error and "404" in delivery.error


def test_hanging_server_times_out_within_the_timeout(hanging_port: int, alert: Alert) -> None:
    start = time.monotonic()
    delivery = channel(f"http://127.0.0.1:{hanging_port}/", attempts=1).send(alert)
    elapsed = time.monotonic() - start
    assert not delivery.ok and delivery.attempts == 1
    assert delivery.error and "did not answer within 0.5 s" in delivery.error
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 0.5
