"""Jinja filters shared by every page: times, numbers, durations in plain words."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def when(value: datetime | None) -> str:
    """``2026-12-06 14:03 UTC``, or an em dash for no time."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """``3 h ago``, ``2 days ago``; an em dash for no time.

    >>> from datetime import timedelta
    >>> t = datetime(2026, 1, 2, tzinfo=UTC)
    >>> ago(t - timedelta(hours=5), now=t)
    '5 h ago'
    """
    if value is None:
        return "—"
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{round(seconds / 60)} min ago"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} days ago"


def number(value: float | int | None, digits: int = 3) -> str:
    """A number for people: ``0.812``, ``12,400``; an em dash for none."""
    if value is None:
        return "—"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"


def percent(value: float | None, digits: int = 1) -> str:
    """``0.125`` -> ``12.5%``."""
    return "—" if value is None else f"{100 * value:.{digits}f}%"


FILTERS: dict[str, Callable[..., Any]] = {
    "when": when,
    "ago": ago,
    "number": number,
    "percent": percent,
}
