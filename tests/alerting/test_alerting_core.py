"""Alert rendering, the shared retry loop, cool-downs, and the package's exports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shipyard.alerting import Alert, Delivery, should_send
from shipyard.alerting._channel import PermanentError, RetryableError, deliver_with_retries
from shipyard.errors import InvalidInput

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
KEY = ("churn-psi", "churn/3/psi/age")


def test_text_is_a_summary_line_then_details(alert: Alert) -> None:
    lines = alert.text.splitlines()
    assert lines[0] == "[Shipyard critical] churn v3: psi drift on age"
    assert lines[1] == "PSI of age is above the critical threshold."
    assert "Model: churn v3" in lines and "Metric: psi on age" in lines
    assert "Raised at: 2024-05-01T12:00:00+00:00" in lines and "Alert id: a1b2c3" in lines


def test_model_level_metric_has_no_feature(alert: Alert) -> None:
    accuracy = alert.model_copy(update={"metric": "accuracy", "feature": None, "link": None})
    assert accuracy.summary == "[Shipyard critical] churn v3: accuracy"
    assert accuracy.key == "churn/3/accuracy/*"
    assert "Link" not in accuracy.text


def test_alert_rejects_bad_values() -> None:
    with pytest.raises(ValidationError):
        Alert.model_validate(
            {
                "rule": "r",
                "severity": "fatal",
                "model": "m",
                "version": 1,
                "metric": "psi",
                "value": 1,
                "threshold": 0.2,
            }
        )
    with pytest.raises(ValidationError):  # naive timestamps are ambiguous once stored
        Alert(
            rule="r",
            severity="info",
            model="m",
            version=1,
            metric="psi",
            value=1,
            threshold=0.2,
            created_at=datetime(2024, 5, 1),
        )


def test_defaults_give_an_id_and_an_aware_timestamp() -> None:
    a = Alert(rule="r", severity="info", model="m", version=1, metric="psi", value=1, threshold=0)
    b = Alert(rule="r", severity="info", model="m", version=1, metric="psi", value=1, threshold=0)
    assert a.id != b.id and a.created_at.tzinfo is not None


def test_retries_back_off_exponentially() -> None:
    sleeps: list[float] = []

    def failing() -> None:
        raise RetryableError("busy")

    delivery = deliver_with_retries(failing, attempts=4, backoff=0.5, sleep=sleeps.append)
    assert delivery == Delivery(ok=False, attempts=4, error="busy (gave up after 4 attempts)")
    assert sleeps == [0.5, 1.0, 2.0]


def test_permanent_and_unexpected_errors_stop_at_once() -> None:
    def refused() -> None:
        raise PermanentError("no")

    def buggy() -> None:
        raise KeyError("oops")

    assert deliver_with_retries(refused, attempts=3, backoff=0) == Delivery(False, 1, "no")
    assert deliver_with_retries(buggy, attempts=3, backoff=0) == Delivery(
        False, 1, "KeyError: 'oops'"
    )


def test_cooldown_first_send_and_after_expiry() -> None:
    assert should_send(*KEY, T0, {}, HOUR)
    sent = {KEY: T0}
    assert not should_send(*KEY, T0 + timedelta(minutes=59), sent, HOUR)
    assert should_send(*KEY, T0 + HOUR, sent, HOUR)
    assert should_send(*KEY, T0, sent, timedelta(0))


def test_cooldown_is_per_rule_and_key() -> None:
    sent = {KEY: T0}
    assert should_send("churn-psi", "churn/3/psi/income", T0, sent, HOUR)
    assert should_send("other-rule", KEY[1], T0, sent, HOUR)


def test_cooldown_send_in_the_future_is_suppressed() -> None:
    assert not should_send(*KEY, T0, {KEY: T0 + timedelta(minutes=5)}, timedelta(0))


def test_cooldown_rejects_bad_input() -> None:
    with pytest.raises(InvalidInput, match="zero or positive"):
        should_send(*KEY, T0, {}, -HOUR)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        should_send(*KEY, datetime(2024, 5, 1), {}, HOUR)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        should_send(*KEY, T0, {KEY: datetime(2024, 5, 1)}, HOUR)
