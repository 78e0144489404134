"""Prometheus metrics of one server, in a registry the app owns (never the global one).

Requests, errors, latency and rows scored are labelled by model, version and endpoint; usage
is charged per team (``shipyard_usage_requests_total``, ``_rows_total``,
``_compute_seconds_total``, labelled ``team``, ``model``, ``version``); the prediction log's
queue, lag, backlog and drops are read from the sink at scrape time, and the process's CPU
and memory from ``/proc`` (``shipyard_server_*``). With several worker processes
(``shipyard serve --workers N``) every worker's ``/metrics`` adds up all workers' counts
(``_metrics_shared``): one server, one set of series, nothing counted twice. (The
``process_*`` series of prometheus-client describe only the worker that answers.)

The durable record of usage is the prediction log (``shipyard usage``); these counters start
at zero with the server.

The request counters and the latency histogram are kept in plain numbers under one lock and
turned into metric families when ``/metrics`` is scraped (prometheus-client's custom
collector). Its ``Counter`` and ``Histogram`` objects cost ~5 us a request inside a busy
server (three labelled children, a Python loop over the buckets, a lock each): 3% of an
ONNX request, for numbers nobody reads until the next scrape.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Info, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from shipyard.predlog import PredictionSink
from shipyard.serving._metrics_shared import (
    Answered,
    AnsweredKey,
    Counts,
    ErrorKey,
    RefusedKey,
    SharedCounts,
    Usage,
    UsageKey,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Latency buckets (seconds) from 250 us: an ONNX request takes well under a millisecond.
_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


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

    def snapshot(self) -> dict[UsageKey, Usage]:
        """The counts now, a missing team as ``""`` (its Prometheus label value)."""
        out: dict[UsageKey, Usage] = {}
        for (team, model, version), c in list(self._counts.items()):
            key = (team or "", model, version)
            old = out.get(key, (0, 0, 0.0))
            out[key] = (old[0] + c[0], old[1] + c[1], old[2] + c[2])
        return out


def _usage_families(counts: Counts) -> Iterator[Metric]:
    """``shipyard_usage_*``: the server's usage per team, model and version."""
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
    for (team, model, version), (n, r, s) in sorted(counts.usage.items()):
        values = [team, model, str(version)]
        requests.add_metric(values, n)
        rows.add_metric(values, r)
        compute.add_metric(values, s)
    yield requests
    yield rows
    yield compute


class ServingMetrics:
    """The server's counters and histograms; ``render()`` is the ``/metrics`` body.

    With ``shared`` (the server's worker processes, ``--workers N``) ``start()`` publishes
    this worker's counts for the others and ``render()`` adds theirs: any worker's
    ``/metrics`` is the whole server's (``_metrics_shared``). ``replica`` names the server in
    ``shipyard_replica_info``.
    """

    def __init__(
        self,
        sink: Callable[[], PredictionSink],
        *,
        shared: SharedCounts | None = None,
        replica: str = "",
    ) -> None:
        self.registry = CollectorRegistry()
        self._sink = sink
        self._shared = shared
        self._lock = threading.Lock()  # the event loop and the shadow thread both count
        self._answered: dict[AnsweredKey, Answered] = {}
        self._refused: dict[RefusedKey, int] = {}
        self._errors: dict[ErrorKey, int] = {}
        #: Charged by the request path (``UsageCounter.count``), rendered with the rest.
        self.usage = UsageCounter()
        self.registry.register(_CountsCollector(self))
        if replica:
            info = Info(
                "shipyard_replica",
                "The server (replica) answering this scrape.",
                registry=self.registry,
            )
            info.info({"replica": replica})

    def start(self) -> None:
        """Begin publishing counts for the other workers (no-op for a single process)."""
        if self._shared is not None:
            self._shared.start(self.own)

    def close(self) -> None:
        """Publish a last copy of the counts, so a stopped worker's requests stay counted."""
        if self._shared is not None:
            self._shared.stop(self.own)

    def observe(self, model: str, version: int, endpoint: str, seconds: float, rows: int) -> None:
        """Record one successful request."""
        key = (model, version, endpoint)
        stats = self._answered.get(key)
        if stats is None:
            stats = self._answered.setdefault(key, Answered(buckets=[0] * (len(_BUCKETS) + 1)))
        with self._lock:
            stats.count += 1
            stats.rows += rows
            stats.seconds += seconds
            stats.buckets[bisect.bisect_left(_BUCKETS, seconds)] += 1

    def failed(
        self, model: str, version: int | None, endpoint: str, error: str, status: int
    ) -> None:
        """Record one refused or failed request."""
        key = (model, "" if version is None else str(version), endpoint, str(status))
        with self._lock:
            self._refused[key] = self._refused.get(key, 0) + 1
            ekey = (model, endpoint, error)
            self._errors[ekey] = self._errors.get(ekey, 0) + 1

    def own(self) -> Counts:
        """Copies of this process's counts, taken under the lock."""
        sink = self._sink()
        with self._lock:
            answered = {
                key: Answered(s.count, s.rows, s.seconds, list(s.buckets))
                for key, s in self._answered.items()
            }
            refused, errors = dict(self._refused), dict(self._errors)
        # Read with defaults: a sink written before these were part of PredictionSink keeps
        # its /metrics working.
        return Counts(
            answered,
            refused,
            errors,
            sink.queue_depth,
            sink.lag_seconds,
            usage=self.usage.snapshot(),
            dropped=int(getattr(sink, "dropped", 0)),
            cpu_seconds=time.process_time(),
            backlog_bytes=int(getattr(sink, "backlog_bytes", 0)),
            unwritable=0 if getattr(sink, "writable", True) else 1,
            memory_bytes=_resident_bytes(),
            processes=1,
        )

    def snapshot(self) -> Counts:
        """The counts a scrape shows: this process's, plus the other workers' if shared."""
        counts = self.own()
        if self._shared is not None:
            counts.add(self._shared.others())
        return counts

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _CountsCollector(Collector):
    """Every series of ``ServingMetrics``, from one ``snapshot()`` a scrape (reading the other
    workers' files once)."""

    def __init__(self, metrics: ServingMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        counts = self._metrics.snapshot()
        yield from _request_families(counts)
        yield from _sink_families(counts)
        yield from _usage_families(counts)
        yield from _server_families(counts)

    def describe(self) -> Iterator[Metric]:
        return iter(())


def _request_families(counts: Counts) -> Iterator[Metric]:
    """``shipyard_requests``, ``shipyard_request_latency_seconds``, ``shipyard_rows_scored``
    and ``shipyard_request_errors``."""
    answered, refused = counts.answered, counts.refused
    requests = CounterMetricFamily(
        "shipyard_requests",
        "Scoring requests answered, by model, version, endpoint and HTTP status.",
        labels=["model", "version", "endpoint", "status"],
    )
    latency = HistogramMetricFamily(
        "shipyard_request_latency_seconds",
        "Time from reading a scoring request to having its response, in seconds.",
        labels=["model", "version", "endpoint"],
    )
    rows: dict[tuple[str, str], int] = {}
    for (model, version, endpoint), stats in answered.items():
        v = str(version)
        requests.add_metric([model, v, endpoint, "200"], stats.count)
        cumulative, buckets = 0, []
        for bound, n in zip((*_BUCKETS, float("inf")), stats.buckets, strict=True):
            cumulative += n
            buckets.append((floatToGoString(bound), cumulative))
        latency.add_metric([model, v, endpoint], buckets, stats.seconds)
        rows[(model, v)] = rows.get((model, v), 0) + stats.rows
    for (model, v, endpoint, status), n in refused.items():
        requests.add_metric([model, v, endpoint, status], n)
    scored = CounterMetricFamily(
        "shipyard_rows_scored",
        "Rows scored, by model and version.",
        labels=["model", "version"],
    )
    for (model, v), n in rows.items():
        scored.add_metric([model, v], n)
    errors = CounterMetricFamily(
        "shipyard_request_errors",
        "Scoring requests refused or failed, by model, endpoint and error type.",
        labels=["model", "endpoint", "error"],
    )
    for (model, endpoint, error), n in counts.errors.items():
        errors.add_metric([model, endpoint, error], n)
    yield requests
    yield latency
    yield scored
    yield errors


def _sink_families(counts: Counts) -> Iterator[Metric]:
    """The prediction log's figures: queue depth and backlog summed over workers, the largest
    lag, drops, and whether every worker can write."""
    yield GaugeMetricFamily(
        "shipyard_prediction_log_queue_depth",
        "Prediction records accepted but not yet durable on disk.",
        value=float(counts.queue_depth),
    )
    yield GaugeMetricFamily(
        "shipyard_prediction_log_lag_seconds",
        "Age of the oldest prediction record not yet durable on disk.",
        value=float(counts.lag_seconds),
    )
    # The disk-full story (--on-log-full): what waits in the WAL, whether it can be
    # written, and what was answered without being logged.
    yield GaugeMetricFamily(
        "shipyard_prediction_log_backlog_bytes",
        "Bytes of write-ahead log segments of this server not yet compacted to Parquet.",
        value=float(counts.backlog_bytes),
    )
    yield GaugeMetricFamily(
        "shipyard_prediction_log_writable",
        "1 while the prediction log accepts writes, 0 from a write the disk refused "
        "(full, read-only) until one succeeds again (in any worker).",
        value=0.0 if counts.unwritable else 1.0,
    )
    yield CounterMetricFamily(
        "shipyard_prediction_log_dropped",
        "Prediction records answered but not logged because the disk refused them "
        "(--on-log-full answer).",
        value=float(counts.dropped),
    )


def _server_families(counts: Counts) -> Iterator[Metric]:
    """``shipyard_server_*``: CPU and memory of all the server's worker processes."""
    yield GaugeMetricFamily(
        "shipyard_server_processes",
        "Worker processes of this server that are running (1 without --workers).",
        value=float(counts.processes),
    )
    yield CounterMetricFamily(
        "shipyard_server_cpu_seconds",
        "CPU seconds (user and system) of all the server's worker processes, "
        "stopped ones included.",
        value=counts.cpu_seconds,
    )
    yield GaugeMetricFamily(
        "shipyard_server_resident_memory_bytes",
        "Resident memory of the server's running worker processes, added up.",
        value=float(counts.memory_bytes),
    )


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _resident_bytes() -> int:
    """This process's resident memory (Linux ``/proc``; 0 where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0
