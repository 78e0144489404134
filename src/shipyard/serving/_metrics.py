"""Prometheus metrics of one server, in a registry the app owns (never the global one).

Requests, errors, latency and rows scored are labelled by model, version and endpoint; the
prediction log's queue depth and lag are read from the sink at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shipyard.serving._sink import PredictionSink

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Latency buckets (seconds) from 250 us: an ONNX request takes well under a millisecond.
_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServingMetrics:
    """The server's counters and histograms; ``render()`` is the ``/metrics`` body."""

    def __init__(self, sink: Callable[[], PredictionSink]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shipyard_requests",
            "Scoring requests answered, by model, version, endpoint and HTTP status.",
            ["model", "version", "endpoint", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "shipyard_request_errors",
            "Scoring requests refused or failed, by model, endpoint and error type.",
            ["model", "endpoint", "error"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shipyard_request_latency_seconds",
            "Time from reading a scoring request to having its response, in seconds.",
            ["model", "version", "endpoint"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "shipyard_rows_scored",
            "Rows scored, by model and version.",
            ["model", "version"],
            registry=self.registry,
        )
        self.registry.register(_SinkCollector(sink))
        # labels() looks up a child under a lock each time; cache them for the hot path.
        self._ok: dict[tuple[str, int, str], tuple[Counter, Histogram, Counter]] = {}

    def observe(self, model: str, version: int, endpoint: str, seconds: float, rows: int) -> None:
        """Record one successful request."""
        key = (model, version, endpoint)
        children = self._ok.get(key)
        if children is None:
            v = str(version)
            children = (
                self.requests.labels(model, v, endpoint, "200"),
                self.latency.labels(model, v, endpoint),
                self.rows.labels(model, v),
            )
            self._ok[key] = children
        requests, latency, scored = children
        requests.inc()
        latency.observe(seconds)
        scored.inc(rows)

    def failed(
        self, model: str, version: int | None, endpoint: str, error: str, status: int
    ) -> None:
        """Record one refused or failed request."""
        v = "" if version is None else str(version)
        self.requests.labels(model, v, endpoint, str(status)).inc()
        self.errors.labels(model, endpoint, error).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _SinkCollector(Collector):
    def __init__(self, sink: Callable[[], PredictionSink]) -> None:
        self._sink = sink

    def collect(self) -> Iterator[GaugeMetricFamily]:
        sink = self._sink()
        yield GaugeMetricFamily(
            "shipyard_prediction_log_queue_depth",
            "Prediction records accepted but not yet durable on disk.",
            value=float(sink.queue_depth),
        )
        yield GaugeMetricFamily(
            "shipyard_prediction_log_lag_seconds",
            "Age of the oldest prediction record not yet durable on disk.",
            value=float(sink.lag_seconds),
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())
