"""JSON webhooks (Slack-compatible ``text`` plus the structured alert), with retries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from shipyard.alerting._alert import Alert
from shipyard.alerting._channel import (
    Channel,
    Delivery,
    PermanentError,
    RetryableError,
    TimedOut,
    check_retry_params,
    deliver_with_retries,
    time_left,
)
from shipyard.errors import InvalidInput

#: 429 is a 4xx but means "later", and Slack uses it for rate limits.
_RETRY_STATUS = frozenset({408, 429})


class WebhookChannel(Channel):
    """POST each alert as JSON: ``{"text": alert.text, "alert": {...}}``.

    Connection errors, timeouts, 5xx, 408 and 429 are retried; other 4xx are final.
    ``timeout`` applies to each attempt.

    >>> WebhookChannel(url="https://hooks.slack.com/services/T0/B0/x").validate()
    """

    name: ClassVar[str] = "webhook"

    def __init__(
        self,
        *,
        url: str,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 1.0,
    ) -> None:
        self.url = url
        self.headers = headers
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff

    def validate(self) -> None:
        """Raise ``InvalidInput`` for a URL that is not http(s) or headers that are not text."""
        parts = urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(
                f"The 'url' parameter of the webhook channel must be an http:// or https:// "
                f"URL. Got {self.url!r} instead."
            )
        headers = self.headers or {}
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise InvalidInput(
                f"The 'headers' parameter of the webhook channel must map header names to "
                f"strings. Got {self.headers!r} instead."
            )
        check_retry_params(
            "webhook", timeout=self.timeout, attempts=self.attempts, backoff=self.backoff
        )

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The JSON body ``send`` posts."""
        return {"text": alert.text, "alert": alert.model_dump(mode="json")}

    def send(self, alert: Alert, *, deadline: float | None = None) -> Delivery:
        """POST ``alert``; never raises for a delivery failure."""
        payload = self.payload(alert)
        with httpx.Client(timeout=self.timeout, headers=dict(self.headers or {})) as client:
            return deliver_with_retries(
                lambda: self._attempt(client, payload, time_left(deadline, self.timeout)),
                attempts=self.attempts,
                backoff=self.backoff,
                deadline=deadline,
            )

    def _attempt(self, client: httpx.Client, payload: dict[str, Any], timeout: float) -> None:
        host = urlsplit(self.url).netloc  # not the full URL: Slack URLs embed a secret
        try:
            response = client.post(self.url, json=payload, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise TimedOut(f"webhook {host} did not answer within {timeout:.3g} s") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"could not reach webhook {host}: {exc}") from exc
        if response.is_success:
            return
        error = f"webhook {host} replied {response.status_code} {response.reason_phrase}"
        body = response.text.strip()[:200]
        if body:
            error += f": {body}"
        if response.status_code >= 500 or response.status_code in _RETRY_STATUS:
            raise RetryableError(error)
        raise PermanentError(error)
