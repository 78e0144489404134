"""Slowing down password guessing: failed logins counted per user name and address.

After ``max_failures`` failed logins for one user from one address within ``window_seconds``,
further attempts for that pair are refused (``TooManyAttempts``, HTTP 429) until the oldest of
those failures is older than the window; a successful login clears the count. Counting by
pair, not by user alone, means nobody can lock a user out from elsewhere by guessing.

The counts live in memory, in one object per app (``app.state``), bounded to ``max_keys``
pairs (the least recently failed forgotten first): a restart forgets them, and each replica
counts its own, so the limit is per replica.

>>> limiter = LoginLimiter(max_failures=2, window_seconds=60)
>>> limiter.failed("bob", "10.0.0.1", now=0.0); limiter.failed("bob", "10.0.0.1", now=1.0)
>>> limiter.retry_after("bob", "10.0.0.1", now=2.0)
58.0
>>> limiter.retry_after("bob", "10.0.0.2", now=2.0) is None
True
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

from shipyard.errors import ShipyardError


class TooManyAttempts(ShipyardError):
    """Too many failed logins for one user from one address; wait and try again."""

    status = 429


class LoginLimiter:
    """Failed logins per (user, address) in a sliding window, in memory, bounded."""

    def __init__(
        self, *, max_failures: int = 5, window_seconds: float = 900.0, max_keys: int = 10_000
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.max_keys = max_keys
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_seconds:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, user: str, address: str, *, now: float | None = None) -> float | None:
        """Seconds until ``user`` may try again from ``address``; ``None``: they may now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent((user.lower(), address), now)
            if times is None or len(times) < self.max_failures:
                return None
            return times[-self.max_failures] + self.window_seconds - now

    def check(self, user: str, address: str) -> None:
        """Raise ``TooManyAttempts`` while ``user`` may not try again from ``address``."""
        wait = self.retry_after(user, address)
        if wait is not None:
            minutes = max(1, round(wait / 60))
            raise TooManyAttempts(
                f"Too many failed logins for '{user}' from your address; try again in "
                f"{minutes} minute{'s' if minutes > 1 else ''}, or ask an admin to set a new "
                "password ('shipyard users set-password')."
            )

    def failed(self, user: str, address: str, *, now: float | None = None) -> None:
        """Count one failed login."""
        now = time.monotonic() if now is None else now
        key = (user.lower(), address)
        with self._lock:
            times = self._recent(key, now) or deque(maxlen=self.max_failures)
            times.append(now)
            self._failures[key] = times
            self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, user: str, address: str) -> None:
        """Forget the failures of ``user`` from ``address`` (they logged in)."""
        with self._lock:
            self._failures.pop((user.lower(), address), None)
