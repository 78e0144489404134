"""How the prediction log tells a trouble that lasts (a full disk, an object store gone):
one line when it starts, a reminder at most every ``REPORT_SECONDS`` while it lasts, one line
when it ends; never a line per failed write or retry, which would flood the server's log (and
fill a shared disk faster).

``Episode`` keeps the time and says which line is due; its callers (the WAL writer's
``WriteFailures``, the compactor's ``Retry``) write the lines, with what they know.

>>> ticks = iter([0.0, 3.0, 12.0, 13.0])
>>> episode = Episode(clock=lambda: next(ticks))
>>> episode.failed(), episode.failed(), episode.failed()
('start', None, 'reminder')
>>> episode.ended()
13.0
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

#: Seconds between two lines about a trouble that goes on.
REPORT_SECONDS = 10.0

Due = Literal["start", "reminder"]


class Episode:
    """A run of failures, from the first one to the next success."""

    def __init__(
        self, *, every: float = REPORT_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every = every
        self.ongoing = False
        self._clock = clock
        self._since = 0.0
        self._reported_at = 0.0

    def failed(self) -> Due | None:
        """Count a failure now; returns the line due: ``"start"`` for the first failure,
        ``"reminder"`` when the last line is ``every`` seconds old, else ``None``."""
        now = self._clock()
        if not self.ongoing:
            self.ongoing, self._since, self._reported_at = True, now, now
            return "start"
        if now - self._reported_at >= self.every:
            self._reported_at = now
            return "reminder"
        return None

    def elapsed(self) -> float:
        """Seconds since the episode started (0 when none is going on)."""
        return self._clock() - self._since if self.ongoing else 0.0

    def ended(self) -> float | None:
        """End the episode after a success; returns how long it lasted in seconds, or
        ``None`` when none was going on (nothing to tell)."""
        if not self.ongoing:
            return None
        lasted = self._clock() - self._since
        self.ongoing = False
        return lasted
