"""Where the server hands its prediction records: the small interface it needs.

``shipyard.serving._predlog.PredictionLog`` (the durable, Parquet-backed log) satisfies it;
``NullSink`` drops everything, for tests and ``--no-log``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class PredictionSink(Protocol):
    """Takes prediction records off the request path.

    ``append`` must be cheap (queue and return) and must not raise for a full disk: the
    server calls it after a response is computed and before it is sent.
    """

    def append(self, records: list[dict[str, Any]]) -> None: ...

    @property
    def queue_depth(self) -> int: ...

    @property
    def lag_seconds(self) -> float: ...

    def close(self) -> None: ...


class NullSink:
    """A sink that keeps nothing (its queue is always empty)."""

    def append(self, records: list[dict[str, Any]]) -> None:
        return None

    @property
    def queue_depth(self) -> int:
        return 0

    @property
    def lag_seconds(self) -> float:
        return 0.0

    def close(self) -> None:
        return None
