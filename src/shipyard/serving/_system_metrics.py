"""The server's health and usage metrics, beside the request metrics of ``_metrics``.

Two collectors join the app's registry (``register_system_metrics``); the usage per team
is counted with the requests, in ``_metrics``:

- the process (prometheus-client's ``ProcessCollector``: resident memory, CPU seconds, open
  files, start time), read from ``/proc`` at scrape time.
- disk: the prediction log's WAL backlog and Parquet, the artifacts and the database
  (``shipyard_prediction_log_wal_bytes`` ...). Measuring lists folders and asks the
  database, so it never runs on the request path or holds a scrape: a scrape returns the
  last measure and starts a new one in a thread when that is older than ``max_age``
  seconds. The process's first scrape waits up to ``first_wait`` seconds (0.5) for the
  first measure (a local log and SQLite take milliseconds); if that is not enough (a huge
  bucket to list), that scrape goes without disk figures and the next has them.
  ``shipyard_disk_measured_age_seconds`` says how old the figures are. Replicas sharing a
  log, database and artifacts report the same figures: aggregate them with ``max``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shipyard.predlog import PredictionSink, log_space
from shipyard.store import Store, artifact_space, database_bytes

log = logging.getLogger("shipyard.serving")


@dataclass(frozen=True)
class _Disk:
    measured_at: float  # time.monotonic()
    gauges: dict[str, tuple[str, float]]  # name -> (help, value)


class DiskCollector(Collector):
    """Gauges of the disk the log, the artifacts and the database take (see the module)."""

    def __init__(
        self,
        store: Store,
        sink: PredictionSink,
        *,
        max_age: float = 30.0,
        first_wait: float = 0.5,
    ) -> None:
        self.store = store
        self.sink = sink
        self.max_age = max_age
        self.first_wait = first_wait
        self._last: _Disk | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def collect(self) -> Iterator[Metric]:
        last = self._last
        if last is None or time.monotonic() - last.measured_at > self.max_age:
            thread = self._refresh()
            if last is None and thread is not None:
                thread.join(self.first_wait)
                last = self._last
        if last is None:
            return
        for name, (help_, value) in last.gauges.items():
            yield GaugeMetricFamily(name, help_, value=value)
        yield GaugeMetricFamily(
            "shipyard_disk_measured_age_seconds",
            "Seconds since the disk figures (shipyard_prediction_log_*_bytes, "
            "shipyard_artifacts_bytes, shipyard_database_bytes) were measured.",
            value=time.monotonic() - last.measured_at,
        )

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def _refresh(self) -> threading.Thread | None:
        """Start a measure in a thread, unless one is running; returns that thread."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self._thread
            self._thread = threading.Thread(
                target=self.measure, name="shipyard-disk-metrics", daemon=True
            )
            self._thread.start()
            return self._thread

    def measure(self) -> None:
        """Measure now (in the calling thread); a part that fails (an object store or a
        database away) keeps its last figures and logs one line."""
        previous = self._last.gauges if self._last is not None else {}
        gauges: dict[str, tuple[str, float]] = {}
        for what, part in (
            ("the prediction log", self._log_gauges),
            ("the artifact store", self._artifact_gauges),
            ("the database", self._database_gauges),
        ):
            try:
                gauges.update(part())
            except Exception as exc:  # a part away must not break /metrics
                log.warning("disk metrics: cannot measure %s: %s", what, type(exc).__name__)
                gauges.update({k: v for k, v in previous.items() if k.startswith(_PREFIXES[what])})
        self._last = _Disk(time.monotonic(), gauges)

    def _log_gauges(self) -> dict[str, tuple[str, float]]:
        root = getattr(self.sink, "root", None)
        if root is None:
            return {}
        space = log_space(root)
        return {
            "shipyard_prediction_log_wal_segments": (
                "Write-ahead segments of the prediction log not yet compacted to Parquet.",
                space.wal_segments,
            ),
            "shipyard_prediction_log_wal_bytes": (
                "Bytes of the prediction log's write-ahead segments (the compaction backlog).",
                space.wal_bytes,
            ),
            "shipyard_prediction_log_wal_oldest_seconds": (
                "Seconds since the oldest write-ahead segment was written (0: none).",
                space.wal_oldest_seconds,
            ),
            "shipyard_prediction_log_parquet_files": (
                "Parquet files of the prediction log (predictions, feedback, id index).",
                space.parquet_files,
            ),
            "shipyard_prediction_log_parquet_bytes": (
                "Bytes of the prediction log's Parquet files.",
                space.parquet_bytes,
            ),
        }

    def _artifact_gauges(self) -> dict[str, tuple[str, float]]:
        files, size = artifact_space(self.store)
        return {
            "shipyard_artifacts_files": ("Files in the artifact store.", files),
            "shipyard_artifacts_bytes": ("Bytes in the artifact store.", size),
        }

    def _database_gauges(self) -> dict[str, tuple[str, float]]:
        db = database_bytes(self.store)
        if db is None:
            return {}
        return {"shipyard_database_bytes": ("Bytes of the metadata database.", db)}


#: The gauges each measured part gives (kept from the last measure when the part fails).
_PREFIXES = {
    "the prediction log": "shipyard_prediction_log_",
    "the artifact store": "shipyard_artifacts_",
    "the database": "shipyard_database_",
}


def register_system_metrics(
    registry: CollectorRegistry, store: Store, sink: PredictionSink
) -> DiskCollector:
    """Add the process and disk collectors to ``registry`` (the app's own)."""
    ProcessCollector(registry=registry)  # registers itself
    disk = DiskCollector(store, sink)
    registry.register(disk)
    return disk
