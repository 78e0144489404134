"""The server's health and usage metrics, beside the request metrics of ``_metrics``.

Three collectors join the app's registry (``register_system_metrics``):

- usage, charged per team (``shipyard_usage_requests_total``, ``_rows_total``,
  ``_compute_seconds_total``, labelled ``team``, ``model``, ``version``): counted on the
  request path in plain numbers under one lock (like ``_metrics``), turned into metric
  families at scrape time. The durable record of usage is the prediction log
  (``shipyard usage``); these counters start at zero with the process.
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
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shipyard.predlog import PredictionSink, log_space
from shipyard.store import Store, artifact_space, database_bytes

log = logging.getLogger("shipyard.serving")


class UsageCounter:
    """Requests, rows and model compute seconds per (team, model, version) since start.

    Only the event loop counts (HTTP and gRPC requests are answered on it; a shadow's or a
    group member's answers, scored off it, are not usage) and scrapes read on the loop too,
    so the counts take no lock: a lock costs as much as the rest of ``count`` together.
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[str | None, str, int], list[float]] = {}

    def count(self, team: str | None, model: str, version: int, rows: int, compute: float) -> None:
        """Charge one answered request to ``team`` (``None``: no team)."""
        counts = self._counts.get((team, model, version))
        if counts is None:
            counts = self._counts[(team, model, version)] = [0, 0, 0.0]
        counts[0] += 1
        counts[1] += rows
        counts[2] += compute

    def snapshot(self) -> dict[tuple[str, str, int], tuple[float, float, float]]:
        """The counts now, a missing team as ``""`` (its Prometheus label value)."""
        out: dict[tuple[str, str, int], tuple[float, float, float]] = {}
        for (team, model, version), c in list(self._counts.items()):
            key = (team or "", model, version)
            old = out.get(key, (0, 0, 0.0))
            out[key] = (old[0] + c[0], old[1] + c[1], old[2] + c[2])
        return out


class _UsageCollector(Collector):
    def __init__(self, usage: UsageCounter) -> None:
        self._usage = usage

    def collect(self) -> Iterator[Metric]:
        labels = ["team", "model", "version"]
        requests = CounterMetricFamily(
            "shipyard_usage_requests",
            "Scoring requests answered, by the caller's team (token team; '' for none), "
            "model and version.",
            labels=labels,
        )
        rows = CounterMetricFamily(
            "shipyard_usage_rows", "Rows scored, by team, model and version.", labels=labels
        )
        compute = CounterMetricFamily(
            "shipyard_usage_compute_seconds",
            "Seconds the model computed answers, by team, model and version.",
            labels=labels,
        )
        for (team, model, version), (n, r, s) in sorted(self._usage.snapshot().items()):
            values = [team, model, str(version)]
            requests.add_metric(values, n)
            rows.add_metric(values, r)
            compute.add_metric(values, s)
        yield requests
        yield rows
        yield compute

    def describe(self) -> Iterator[Metric]:
        return iter(())


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
    registry: CollectorRegistry, usage: UsageCounter, store: Store, sink: PredictionSink
) -> DiskCollector:
    """Add the usage, process and disk collectors to ``registry`` (the app's own)."""
    registry.register(_UsageCollector(usage))
    ProcessCollector(registry=registry)  # registers itself
    disk = DiskCollector(store, sink)
    registry.register(disk)
    return disk
