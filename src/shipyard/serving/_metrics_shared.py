"""The counts of one server's worker processes (``shipyard serve --workers N``), added up.

Uvicorn's workers share one listening socket: a scrape of ``/metrics`` reaches whichever
worker accepts it. Each worker keeps its counts in memory (``_metrics``) and publishes a
copy to ``<folder>/<pid>.json`` every ``PUBLISH_SECONDS`` and when it stops; the worker that
answers a scrape adds its own live counts to the others' files. So any scrape gives the
server's totals, with no ``worker`` label and nothing counted twice; another worker's counts
are at most ``PUBLISH_SECONDS`` old (Prometheus scrapes every 15 s or more).

Besides the requests, a worker shares its usage per team (requests, rows, compute seconds),
its prediction log's figures (records dropped on a full disk, WAL backlog, whether it can
write) and its process's CPU seconds and resident memory, so the ``shipyard_usage_*``,
``shipyard_prediction_log_*`` and ``shipyard_server_*`` series are the server's too.

A worker that died keeps its file: its requests, usage, drops and CPU seconds stay in the
totals, as a counter must (a ``kill -9`` loses only its last ``PUBLISH_SECONDS`` of counts).
Its gauges (queue depth, lag, backlog, memory) no longer count. The folder lives as long as
the server: ``shipyard serve`` creates it and removes it on exit, so a restarted server
starts from zero, like one process.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

#: How often each worker publishes its counts for the others to read.
PUBLISH_SECONDS = 0.5
AnsweredKey = tuple[str, int, str]  # model, version, endpoint
RefusedKey = tuple[str, str, str, str]  # model, version ("" if none), endpoint, status
ErrorKey = tuple[str, str, str]  # model, endpoint, error class
UsageKey = tuple[str, str, int]  # team ("" for none), model, version
Usage = tuple[float, float, float]  # requests, rows, model compute seconds


@dataclass
class Answered:
    """The successful requests of one (model, version, endpoint)."""

    count: int = 0
    rows: int = 0
    seconds: float = 0.0
    #: Requests per latency bucket, not cumulative; the last one is +Inf.
    buckets: list[int] = field(default_factory=list)

    def add(self, other: Answered) -> None:
        self.count += other.count
        self.rows += other.rows
        self.seconds += other.seconds
        if not self.buckets:
            self.buckets = [0] * len(other.buckets)
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]


@dataclass
class Counts:
    """What ``/metrics`` renders: one process's counts, or several added up."""

    answered: dict[AnsweredKey, Answered] = field(default_factory=dict)
    refused: dict[RefusedKey, int] = field(default_factory=dict)
    errors: dict[ErrorKey, int] = field(default_factory=dict)
    queue_depth: int = 0
    lag_seconds: float = 0.0
    usage: dict[UsageKey, Usage] = field(default_factory=dict)
    #: Counters of the prediction log and the process (kept from dead workers).
    dropped: int = 0
    cpu_seconds: float = 0.0
    #: Gauges (summed over live workers only): WAL bytes not yet compacted, processes whose
    #: log refuses writes, resident memory, and how many processes these figures cover.
    backlog_bytes: int = 0
    unwritable: int = 0
    memory_bytes: int = 0
    processes: int = 0

    def add(self, other: Counts) -> None:
        """Add ``other``'s counters and gauges; keep the larger lag."""
        for key, stats in other.answered.items():
            self.answered.setdefault(key, Answered()).add(stats)
        for rkey, n in other.refused.items():
            self.refused[rkey] = self.refused.get(rkey, 0) + n
        for ekey, n in other.errors.items():
            self.errors[ekey] = self.errors.get(ekey, 0) + n
        for ukey, (requests, rows, seconds) in other.usage.items():
            old = self.usage.get(ukey, (0.0, 0.0, 0.0))
            self.usage[ukey] = (old[0] + requests, old[1] + rows, old[2] + seconds)
        self.queue_depth += other.queue_depth
        self.lag_seconds = max(self.lag_seconds, other.lag_seconds)
        self.dropped += other.dropped
        self.cpu_seconds += other.cpu_seconds
        self.backlog_bytes += other.backlog_bytes
        self.unwritable += other.unwritable
        self.memory_bytes += other.memory_bytes
        self.processes += other.processes

    def without_gauges(self) -> Counts:
        """These counts as a dead worker's count: its counters, none of its gauges."""
        return Counts(
            self.answered,
            self.refused,
            self.errors,
            usage=self.usage,
            dropped=self.dropped,
            cpu_seconds=self.cpu_seconds,
        )

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "answered": [
                    [*k, s.count, s.rows, s.seconds, s.buckets] for k, s in self.answered.items()
                ],
                "refused": [[*k, n] for k, n in self.refused.items()],
                "errors": [[*k, n] for k, n in self.errors.items()],
                "queue_depth": self.queue_depth,
                "lag_seconds": self.lag_seconds,
                "usage": [[*k, *u] for k, u in self.usage.items()],
                "figures": [
                    self.dropped,
                    self.cpu_seconds,
                    self.backlog_bytes,
                    self.unwritable,
                    self.memory_bytes,
                    self.processes,
                ],
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> Counts:
        raw: dict[str, Any] = orjson.loads(data)
        dropped, cpu, backlog, unwritable, memory, processes = raw["figures"]
        return cls(
            answered={
                (m, int(v), e): Answered(c, r, s, list(b))
                for m, v, e, c, r, s, b in raw["answered"]
            },
            refused={(m, v, e, st): int(n) for m, v, e, st, n in raw["refused"]},
            errors={(m, e, err): int(n) for m, e, err, n in raw["errors"]},
            queue_depth=int(raw["queue_depth"]),
            lag_seconds=float(raw["lag_seconds"]),
            usage={(t, m, int(v)): (n, r, s) for t, m, v, n, r, s in raw["usage"]},
            dropped=int(dropped),
            cpu_seconds=float(cpu),
            backlog_bytes=int(backlog),
            unwritable=int(unwritable),
            memory_bytes=int(memory),
            processes=int(processes),
        )


class SharedCounts:
    """This worker's file in the server's shared metrics folder, and the others'."""

    def __init__(self, folder: Path, pid: int | None = None) -> None:
        self.folder = folder
        self.pid = os.getpid() if pid is None else pid
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def path(self) -> Path:
        return self.folder / f"{self.pid}.json"

    def publish(self, counts: Counts) -> None:
        """Replace this worker's file with ``counts`` (atomically: readers see old or new)."""
        tmp = self.folder / f".{self.pid}.json.tmp"
        tmp.write_bytes(counts.to_json())
        os.replace(tmp, self.path)

    def others(self) -> Counts:
        """The other workers' counts added up; gauges only from workers still running."""
        total = Counts()
        for path in self.folder.glob("*.json"):
            pid = int(path.stem) if path.stem.isdigit() else None
            if pid is None or pid == self.pid:
                continue
            try:
                counts = Counts.from_json(path.read_bytes())
            except (OSError, ValueError, KeyError, TypeError):
                continue  # removed as we read it, or not ours: nothing to add
            total.add(counts if _alive(pid) else counts.without_gauges())
        return total

    def start(self, snapshot: Callable[[], Counts]) -> None:
        """Publish ``snapshot()`` every ``PUBLISH_SECONDS`` on a daemon thread until ``stop``."""

        def loop() -> None:
            while not self._stop.wait(PUBLISH_SECONDS):
                with contextlib.suppress(OSError):  # the folder went with the server
                    self.publish(snapshot())

        self._thread = threading.Thread(target=loop, name="shipyard-metrics", daemon=True)
        self._thread.start()

    def stop(self, snapshot: Callable[[], Counts]) -> None:
        """Stop publishing, after a last copy of ``snapshot()``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(OSError):
            self.publish(snapshot())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True
