"""The counts workers share (``shipyard.serving._metrics_shared``), in process: a scrape adds the
other workers' counters, once each, and keeps a dead worker's requests but not its gauges;
and the replica's name, checked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cli_support import cli
from shipyard.predlog import NullSink
from shipyard.serving._metrics import ServingMetrics
from shipyard.serving._metrics_shared import Answered, Counts, SharedCounts


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _samples(metrics: ServingMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_scrape_adds_the_other_workers_once(tmp_path: Path) -> None:
    other = Counts(
        answered={("churn", 1, "predict"): Answered(3, 5, 0.03, [3] + [0] * 13)},
        refused={("churn", "", "predict", "400"): 2},
        errors={("churn", "predict", "InvalidInput"): 2},
        queue_depth=7,
        lag_seconds=0.4,
        usage={("risk", "churn", 1): (3.0, 5.0, 0.02)},
        dropped=4,
        cpu_seconds=2.5,
        backlog_bytes=1000,
        unwritable=1,
        memory_bytes=100_000_000,
        processes=1,
    )
    SharedCounts(tmp_path, pid=os.getppid()).publish(other)  # a running worker
    SharedCounts(tmp_path, pid=_dead_pid()).publish(other)  # one that died
    (tmp_path / "README.txt").write_text("not a worker's file")

    shared = SharedCounts(tmp_path)
    metrics = ServingMetrics(NullSink, shared=shared, replica="r1")
    metrics.observe("churn", 1, "predict", 0.0001, 1)
    metrics.usage.count("risk", "churn", 1, 1, 0.001)
    metrics.failed("churn", None, "predict", "InvalidInput", 400)
    shared.publish(metrics.own())  # its own file is never added to its own counts

    got = _samples(metrics)
    ok = (("endpoint", "predict"), ("model", "churn"), ("status", "200"), ("version", "1"))
    assert got["shipyard_requests_total", ok] == 1 + 3 + 3
    bad = (("endpoint", "predict"), ("model", "churn"), ("status", "400"), ("version", ""))
    assert got["shipyard_requests_total", bad] == 1 + 2 + 2
    err = (("endpoint", "predict"), ("error", "InvalidInput"), ("model", "churn"))
    assert got["shipyard_request_errors_total", err] == 5
    assert got["shipyard_rows_scored_total", (("model", "churn"), ("version", "1"))] == 11
    inf = (("endpoint", "predict"), ("le", "+Inf"), ("model", "churn"), ("version", "1"))
    assert got["shipyard_request_latency_seconds_bucket", inf] == 7
    # The dead worker's requests stay counted; its queue does not.
    assert got["shipyard_prediction_log_queue_depth", ()] == 7
    assert got["shipyard_prediction_log_lag_seconds", ()] == 0.4
    assert got["shipyard_replica_info", (("replica", "r1"),)] == 1
    # Usage, drops and CPU are counters: the dead worker's stay. Backlog, memory, processes
    # and the unwritable log are gauges: only the live worker's are added to this one's.
    team = (("model", "churn"), ("team", "risk"), ("version", "1"))
    assert got["shipyard_usage_requests_total", team] == 1 + 3 + 3
    assert got["shipyard_usage_rows_total", team] == 1 + 5 + 5
    assert got["shipyard_usage_compute_seconds_total", team] == pytest.approx(0.041)
    assert got["shipyard_prediction_log_dropped_total", ()] == 8
    assert got["shipyard_prediction_log_backlog_bytes", ()] == 1000
    assert got["shipyard_prediction_log_writable", ()] == 0  # the live worker's disk is full
    assert got["shipyard_server_processes", ()] == 2
    assert got["shipyard_server_cpu_seconds_total", ()] > 5.0  # 2.5 twice, and this one's
    memory = got["shipyard_server_resident_memory_bytes", ()]
    assert 100_000_000 + 10_000_000 < memory < 100_000_000 + 10_000_000_000  # + this process


def test_stopping_publishes_the_last_counts(tmp_path: Path) -> None:
    shared = SharedCounts(tmp_path)
    metrics = ServingMetrics(NullSink, shared=shared)
    metrics.start()
    metrics.observe("churn", 2, "infer", 0.002, 4)
    metrics.close()
    published = Counts.from_json(shared.path.read_bytes())
    assert published.answered[("churn", 2, "infer")].rows == 4


def test_a_replica_name_too_long_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path))
    monkeypatch.setenv("SHIPYARD_REPLICA", "r" * 129)
    code, _, err = cli(capsys, "serve", "--no-auth")
    assert code == 2
    assert "--replica (SHIPYARD_REPLICA) must be at most 128 characters. Got 129." in err
