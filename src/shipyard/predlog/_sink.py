"""Where the server hands its prediction records: the small interface it needs.

``PredictionLog`` (the durable, Parquet-backed log) satisfies it; ``NullSink`` drops
everything, for tests and ``--no-log``.

An answered request reaches a sink as one ``Answers``: what its rows share, then the rows as
lists. The log writes that shape as it is, without building a record per row on the request
path; ``Answers.records()`` gives the records for sinks that want dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(slots=True)
class Answers:
    """One answered request (or one shadow's answers to it), as the log keeps it."""

    model: str
    version: int
    arm: str  # how the version was chosen: the alias, "canary", "shadow", "explicit" ...
    ts: float  # epoch seconds
    latency_ms: float
    ids: list[str]  # one prediction id per row
    columns: list[str]
    rows: list[list[Any]]  # the inputs as the request sent them (before coercion)
    predictions: list[Any]
    proba: list[list[float]] | None = None  # one list per row, in the order of ``classes``
    classes: list[str] | None = None
    # Usage (``shipyard usage``): the token's name and team, and the model's compute time
    # for the whole request (``None``: not known, e.g. a shadow's or a group member's answer).
    caller: str | None = None
    team: str | None = None
    compute_ms: float | None = None

    def records(self) -> list[dict[str, Any]]:
        """One record per row, as ``PredictionLog.append`` takes them."""
        shared = {
            "ts": self.ts,
            "model": self.model,
            "version": self.version,
            "arm": self.arm,
            "status": "ok",
            "latency_ms": self.latency_ms,
            "caller": self.caller,
            "team": self.team,
            "compute_ms": self.compute_ms,
            "request_rows": len(self.ids),
        }
        out = []
        for i, (pid, row) in enumerate(zip(self.ids, self.rows, strict=True)):
            record = {
                **shared,
                "prediction_id": pid,
                "inputs": dict(zip(self.columns, row, strict=True)),
                "prediction": self.predictions[i],
            }
            if self.proba is not None and self.classes is not None:
                record["proba"] = dict(zip(self.classes, self.proba[i], strict=True))
            out.append(record)
        return out


@runtime_checkable
class PredictionSink(Protocol):
    """Takes prediction records off the request path.

    ``append`` (refusals) and ``append_answers`` (answers) must be cheap: the server calls
    them after a response is computed and before it is sent. A sink that cannot keep the
    records raises ``StoreUnavailable`` (the request then fails: an answer nobody can account
    for is not sent) or counts them in ``dropped``, as configured (``--on-log-full``).

    ``queue_depth``, ``lag_seconds`` and ``backlog_bytes`` say what is not yet compacted,
    ``writable`` whether the last write worked, ``dropped`` how many records were answered
    without being kept: the server's ``/metrics`` read them at scrape time.
    """

    def append(self, records: list[dict[str, Any]]) -> None: ...

    def append_answers(self, answers: Answers) -> None: ...

    @property
    def queue_depth(self) -> int: ...

    @property
    def lag_seconds(self) -> float: ...

    @property
    def backlog_bytes(self) -> int: ...

    @property
    def writable(self) -> bool: ...

    @property
    def dropped(self) -> int: ...

    def close(self) -> None: ...


class NullSink:
    """A sink that keeps nothing (its queue is always empty)."""

    def append(self, records: list[dict[str, Any]]) -> None:
        return None

    def append_answers(self, answers: Answers) -> None:
        return None

    @property
    def queue_depth(self) -> int:
        return 0

    @property
    def lag_seconds(self) -> float:
        return 0.0

    @property
    def backlog_bytes(self) -> int:
        return 0

    @property
    def writable(self) -> bool:
        return True

    @property
    def dropped(self) -> int:
        return 0

    def close(self) -> None:
        return None
