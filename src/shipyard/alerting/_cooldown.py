"""Cool-downs: an alert is not re-sent for the same rule and key until its cool-down ends."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from shipyard.errors import InvalidInput


def should_send(
    rule: str,
    key: str,
    now: datetime,
    last_sent_at: Mapping[tuple[str, str], datetime],
    cooldown: timedelta,
) -> bool:
    """Whether an alert of ``rule`` about ``key`` (``Alert.key``) may be sent at ``now``.

    ``last_sent_at`` maps ``(rule, key)`` to when that alert was last sent. A send recorded
    in the future (clock skew) counts as recent, so it is suppressed rather than repeated.

    >>> from datetime import UTC, datetime, timedelta
    >>> sent = {("churn-psi", "churn/3/psi/age"): datetime(2024, 5, 1, 12, 0, tzinfo=UTC)}
    >>> should_send("churn-psi", "churn/3/psi/age", datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
    ...             sent, timedelta(hours=1))
    False
    >>> should_send("churn-psi", "churn/3/psi/age", datetime(2024, 5, 1, 13, 0, tzinfo=UTC),
    ...             sent, timedelta(hours=1))
    True
    """
    if cooldown < timedelta(0):
        raise InvalidInput(f"A cool-down must be zero or positive. Got {cooldown} instead.")
    if now.tzinfo is None:
        raise InvalidInput(f"'now' must be timezone-aware, e.g. in UTC. Got {now!r} instead.")
    last = last_sent_at.get((rule, key))
    if last is None:
        return True
    if last.tzinfo is None:
        raise InvalidInput(
            f"The last send of rule {rule!r} for {key!r} must be timezone-aware. "
            f"Got {last!r} instead."
        )
    elapsed = now - last
    if elapsed < timedelta(0):
        return False
    return elapsed >= cooldown
