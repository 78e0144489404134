"""The one contract every channel in ``CHANNELS`` follows, run over each built-in."""

from __future__ import annotations

import inspect
import re
import time

import pytest
from alerting_support import TIMEOUT, Harness

from shipyard.alerting import CHANNELS, Alert, Channel, Delivery, channel_from_config
from shipyard.errors import InvalidInput


@pytest.mark.parametrize("kind", sorted(CHANNELS))
def test_init_is_keyword_only_and_only_stores_arguments(kind: str) -> None:
    cls = CHANNELS[kind]
    assert issubclass(cls, Channel) and cls.name == kind
    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    positional = [p.name for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert not positional, f"Make {positional} keyword-only in {cls.__name__}.__init__ (add *)"
    # Storing only: absurd values do not raise until validate().
    absurd = {p.name: object() for p in params}
    channel = cls(**absurd)
    for name, value in absurd.items():
        assert getattr(channel, name) is value, f"{cls.__name__} must store {name!r} as is"
    with pytest.raises(InvalidInput):
        channel.validate()


def test_send_ok(harness: Harness, alert: Alert) -> None:
    delivery = harness.accepting().send(alert)
    assert delivery == Delivery(ok=True, attempts=1, error=None)
    assert harness.delivered() == 1


def test_server_refuses(harness: Harness, alert: Alert) -> None:
    delivery = harness.refusing(attempts=2).send(alert)
    assert not delivery.ok
    assert 1 <= delivery.attempts <= 2
    assert delivery.error


def test_server_hangs_times_out(harness: Harness, alert: Alert, hanging_port: int) -> None:
    start = time.monotonic()
    delivery = harness.hanging(hanging_port, attempts=2).send(alert)
    elapsed = time.monotonic() - start
    assert not delivery.ok and delivery.attempts == 2
    assert delivery.error and f"within {TIMEOUT} s" in delivery.error
    assert elapsed < 2 * TIMEOUT + 1.0


def test_nobody_listening_is_retried(harness: Harness, alert: Alert) -> None:
    from alerting_support import free_port

    delivery = harness.hanging(free_port(), attempts=3).send(alert)
    assert not delivery.ok and delivery.attempts == 3
    assert delivery.error and "gave up after 3 attempts" in delivery.error


def test_bad_config_is_invalid_input_at_construction(harness: Harness) -> None:
    for config in harness.bad_configs:
        with pytest.raises(InvalidInput) as info:
            channel_from_config(harness.kind, config)
        message = info.value.message
        assert message.endswith("."), f"{config}: {message!r} should be a full sentence"


def test_unknown_channel_kind() -> None:
    with pytest.raises(InvalidInput, match=r"Unknown channel type 'pager'\. Use one of: email"):
        channel_from_config("pager", {})


def test_a_deadline_bounds_retries_and_timeouts(
    harness: Harness, alert: Alert, hanging_port: int
) -> None:
    """Whatever the channel's timeout and attempts, ``send`` does not run past ``deadline``."""
    channel = harness.hanging(hanging_port, timeout=5.0, attempts=3, backoff=0.2)
    start = time.monotonic()
    delivery = channel.send(alert, deadline=start + 0.6)
    elapsed = time.monotonic() - start
    assert not delivery.ok and delivery.error
    assert re.search(r"did not answer within 0\.[3-6]\d* s", delivery.error), delivery.error
    assert "out of time" in delivery.error and delivery.attempts == 1
    assert 0.5 <= elapsed < 1.2


def test_options_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``<option>_env`` reads a secret from the environment instead of shipyard.toml."""
    monkeypatch.setenv("SHIPYARD_TEST_HOOK", "http://127.0.0.1:9/secret-hook")
    channel = channel_from_config("webhook", {"url_env": "SHIPYARD_TEST_HOOK"})
    assert channel.url == "http://127.0.0.1:9/secret-hook"  # type: ignore[attr-defined]
    monkeypatch.setenv("SHIPYARD_TEST_PASSWORD", "s3cret")
    email = channel_from_config(
        "email",
        {
            "host": "127.0.0.1",
            "from": "a@example.com",
            "to": ["b@example.com"],
            "username": "a",
            "password_env": "SHIPYARD_TEST_PASSWORD",
        },
    )
    assert email.password == "s3cret"  # type: ignore[attr-defined]
    monkeypatch.delenv("SHIPYARD_TEST_HOOK")
    with pytest.raises(InvalidInput, match=r"'SHIPYARD_TEST_HOOK' \(url_env\), which is not set"):
        channel_from_config("webhook", {"url_env": "SHIPYARD_TEST_HOOK"})
    with pytest.raises(InvalidInput, match=r"must name an environment variable"):
        channel_from_config("webhook", {"url_env": 3})
    with pytest.raises(InvalidInput, match=r"Unknown option 'colour'"):
        channel_from_config("webhook", {"url": "http://127.0.0.1:9/h", "colour_env": "HOME"})
