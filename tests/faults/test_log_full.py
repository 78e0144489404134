"""Disk full on the prediction log's volume: requests are refused or answered by policy
(``--on-log-full refuse|answer``), nothing half-written stays, the loss and the backlog are
in ``/metrics`` and the log, and logging resumes by itself once space is back.

Every test fills a real 2 MiB tmpfs (``small_disk``): the writes really fail with ENOSPC.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from faults.conftest import SmallDisk, log_records
from shipyard.cli import run_cli
from shipyard.errors import StoreUnavailable
from shipyard.predlog import PredictionLog
from shipyard.serving import create_app, open_prediction_log, serve_in_thread
from shipyard.settings import ServeSettings
from shipyard.store import Store

Record = Callable[[int], dict[str, object]]


def _wal_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((root / "wal").glob("*.wal")))


def _logged_ids(log: PredictionLog) -> list[str]:
    rows = log.query("SELECT prediction_id FROM predictions WHERE status = 'ok'", model="churn")
    return rows["prediction_id"].tolist()


@pytest.mark.parametrize("policy", ["raise", "drop"])
def test_a_refused_write_leaves_nothing_behind_and_logging_resumes(
    small_disk: SmallDisk, policy: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = small_disk.path / "log"
    log = PredictionLog(root, rotate_seconds=3600, compactor="thread", on_write_error=policy)  # type: ignore[arg-type]
    log.open()
    try:
        log.append(log_records(0, 10))
        kept = 10
        # A few KiB left: some batch of 20 records (~3 KiB) is cut short by the disk.
        small_disk.fill(leave=6000)
        failed_batches = 0
        n = 10
        with caplog.at_level(logging.WARNING, logger="shipyard.predlog"):
            while failed_batches < 3:
                batch = log_records(n, 20)
                n += 20
                dropped_before = log.dropped
                try:
                    log.append(batch)
                except StoreUnavailable as exc:
                    assert policy == "raise"
                    assert "No space left on device" in exc.message
                    assert "--on-log-full answer" in exc.message
                    failed_batches += 1
                    continue
                if log.dropped > dropped_before:
                    assert policy == "drop"
                    failed_batches += 1
                    continue
                kept += 20
                assert n < 10_000, "the disk never filled"
            assert not log.writable
            # Only whole lines of kept records: the cut-short write was cut back.
            data = _wal_bytes(root)
            assert data.endswith(b"\n")
            assert data.count(b"\n") == kept
            assert log.dropped == (60 if policy == "drop" else 0)
            small_disk.free()
            log.append(log_records(n, 5))
            kept += 5
            assert log.writable
        messages = [r.getMessage() for r in caplog.records]
        failed = [m for m in messages if "cannot write" in m]
        assert len(failed) == 1, messages  # one line per episode, not one per write
        assert "No space left on device" in failed[0]
        assert any("writing again" in m and "60 record(s)" in m for m in messages), messages
    finally:
        small_disk.free()
        log.close()
    ids = _logged_ids(log)
    assert len(ids) == len(set(ids)) == kept


def _metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _requests(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], status: str) -> float:
    return sum(
        v
        for (name, labels), v in metrics.items()
        if name == "shipyard_requests_total" and ("status", status) in labels
    )


@pytest.mark.parametrize("on_log_full", ["refuse", "answer"])
def test_a_full_log_disk_refuses_or_answers_by_policy_and_says_so(
    small_disk: SmallDisk, served_store: Store, record: Record, on_log_full: str
) -> None:
    settings = ServeSettings(auth=False, compactor="thread", on_log_full=on_log_full)  # type: ignore[arg-type]
    log = open_prediction_log(str(small_disk.path / "log"), settings)
    assert isinstance(log, PredictionLog)
    rows = [record(i) for i in range(5)]
    answered_rows, refused, bodies = 0, 0, []
    try:
        app = create_app(served_store, settings=settings, prediction_log=log)
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:

            def predict() -> httpx.Response:
                nonlocal answered_rows, refused
                response = client.post("/models/churn/predict", json={"records": rows})
                if response.status_code == 200:
                    answered_rows += len(response.json()["prediction_ids"])
                else:
                    refused += 1
                    bodies.append(response.json())
                return response

            for _ in range(3):
                assert predict().status_code == 200
            before = _metrics(url)
            assert before[("shipyard_prediction_log_writable", ())] == 1.0
            assert before[("shipyard_prediction_log_backlog_bytes", ())] > 0
            small_disk.fill()
            # The WAL's last page may still take a request or two; then the disk refuses.
            before_full = 0
            while predict().status_code == 200 and not log.dropped:
                before_full += 1
                assert before_full < 50, "the disk never filled"
            full = [predict().status_code for _ in range(4)]
            # A refusal for bad input stays what it is, though its record cannot be logged.
            bad = client.post("/models/churn/predict", json={"records": [{"age": "x"}]})
            during = _metrics(url)
            small_disk.free()
            after_free = [predict().status_code for _ in range(3)]
            after = _metrics(url)
    finally:
        small_disk.free()
        log.close()
    assert after_free == [200, 200, 200]
    assert bad.status_code == 422 and bad.json()["code"] == "SchemaViolation"
    assert during[("shipyard_prediction_log_writable", ())] == 0.0
    assert after[("shipyard_prediction_log_writable", ())] == 1.0
    answered = 3 + before_full + 3
    if on_log_full == "refuse":
        assert full == [503] * 4 and refused == 5
        assert {b["code"] for b in bodies} == {"StoreUnavailable"}
        assert "No space left on device" in bodies[0]["error"]
        assert "--on-log-full answer" in bodies[0]["error"]
        assert str(small_disk.path) not in bodies[0]["error"]  # the folder stays in the log
        assert _requests(during, "503") == 5
        assert during[("shipyard_prediction_log_dropped_total", ())] == 0.0
        logged = answered_rows  # every answered row is logged
    else:
        assert full == [200] * 4 and refused == 0
        answered += 5
        # 5 requests of 5 rows, and the refusal's record
        assert during[("shipyard_prediction_log_dropped_total", ())] == 26.0
        assert _requests(during, "503") == 0
        logged = answered_rows - 25
    assert answered_rows == 5 * answered
    assert _requests(after, "200") == answered
    ids = _logged_ids(log)
    assert len(ids) == len(set(ids)) == logged


def test_on_log_full_takes_answer_or_refuse_only(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(["serve", "--on-log-full", "sometimes"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--on-log-full must be answer or refuse. Got 'sometimes' instead." in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-batch-rows", "0"], "--max-batch-rows: Input should be greater than 0 (got 0)."),
        (["--max-body-bytes", "-1"], "--max-body-bytes: Input should be greater than 0 (got -1)."),
        (["--rate-limit", "lots"], "A rate limit reads like '100/s'"),
    ],
)
def test_a_serve_option_out_of_range_is_one_sentence(
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path))
    code = run_cli(["serve", "--no-auth", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err and "validation error" not in err
    assert not (tmp_path / "predlog").exists()  # refused before anything was opened
