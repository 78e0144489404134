"""The disk figures of ``/metrics`` never hold a scrape: a slow listing (an object store
that takes its time) is waited for at most ``first_wait`` once, then measured in the
background while scrapes return the last figures."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shipyard.predlog import PredictionLog
from shipyard.serving import _system_metrics
from shipyard.serving._system_metrics import DiskCollector
from shipyard.store import Store


def _gauges(registry: CollectorRegistry) -> dict[str, float]:
    text = generate_latest(registry).decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_a_slow_measure_never_holds_a_scrape(
    served_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real = _system_metrics.artifact_space

    def slow_listing(store: Store) -> tuple[int, int]:
        release.wait(10)  # the object store answers when the test says so
        return real(store)

    monkeypatch.setattr(_system_metrics, "artifact_space", slow_listing)
    with PredictionLog(tmp_path / "predlog") as log:
        log.append([{"prediction_id": "a", "model": "churn", "version": 1, "prediction": 1}])
        registry = CollectorRegistry()
        registry.register(DiskCollector(served_store, log, max_age=0.0, first_wait=0.2))
        start = time.monotonic()
        assert "shipyard_artifacts_bytes" not in _gauges(registry)  # not measured yet
        assert "shipyard_prediction_log_wal_bytes" not in _gauges(registry)
        assert time.monotonic() - start < 2.0  # two scrapes: neither waited for the listing
        release.set()
        deadline = time.monotonic() + 10
        while "shipyard_artifacts_bytes" not in (gauges := _gauges(registry)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert gauges["shipyard_artifacts_bytes"] > 1000
    assert gauges["shipyard_prediction_log_wal_segments"] == 1
    assert gauges["shipyard_prediction_log_wal_bytes"] > 0
    assert gauges["shipyard_database_bytes"] > 0
    assert gauges["shipyard_disk_measured_age_seconds"] >= 0
