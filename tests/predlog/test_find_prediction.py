"""``find_prediction``: one prediction by id, from the WAL or the Parquet of its day, with its
labels; malformed ids refused. With the Parquet on local disk, SeaweedFS and moto."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from predlog_stores import LogStore

from shipyard.errors import InvalidInput
from shipyard.predlog import PredictionLog, check_prediction_id, find_prediction, id_day
from trace_support import HTML_INPUT, record, server_id

DAY = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_a_server_id_is_found_in_its_days_parquet_with_its_label(
    tmp_path: Path, log_store: LogStore
) -> None:
    root = tmp_path / "log"
    target = server_id(DAY)
    with log_store.log(root) as log:
        log.append(
            [record(server_id(DAY - timedelta(days=d)), DAY - timedelta(days=d)) for d in (1, 2, 3)]
        )
        log.append([record(target, DAY)])
        log.append([record(server_id(DAY), DAY, model="fraud", version=2)])
    with PredictionLog(root) as log:
        assert log.record_feedback("churn", target, "stay", ts=DAY + timedelta(days=2)).matched
    found = find_prediction(root, target)
    assert found is not None
    assert found["model"] == "churn" and found["version"] == 1
    assert found["inputs"] == {"age": 41, "plan": HTML_INPUT}
    assert found["prediction"] == "churn" and found["proba"] == {"churn": 0.8, "stay": 0.2}
    assert found["ts"] == DAY and found["arm"] == "production" and found["latency_ms"] == 1.5
    assert "date=2026-11-23" in found["source"]
    assert found["source"].startswith(log_store.url or str(root.resolve()))
    assert [label["label"] for label in found["labels"]] == ["stay"]
    assert found["labels"][0]["ts"] == DAY + timedelta(days=2)


def test_a_record_still_in_the_wal_is_found(tmp_path: Path) -> None:
    root = tmp_path / "log"
    target = server_id(DAY)
    live = PredictionLog(root, rotate_seconds=3600).open()
    try:
        live.append([record(target, DAY, version=3)])
        live.record_feedback("churn", target, "churn")
        found = find_prediction(root, target)
    finally:
        live.close()
    assert found is not None and found["source"] == "wal" and found["version"] == 3
    assert [label["label"] for label in found["labels"]] == ["churn"]


def test_an_id_without_a_time_is_found_in_any_partition(
    tmp_path: Path, log_store: LogStore
) -> None:
    root = tmp_path / "log"
    batch_id = uuid.uuid4().hex
    with log_store.log(root) as log:
        log.append([record(batch_id, DAY - timedelta(days=40), model="fraud")])
        log.append([record(server_id(DAY), DAY)])
    assert id_day(batch_id) is None
    found = find_prediction(root, batch_id)
    assert found is not None and found["model"] == "fraud" and found["labels"] == []


def test_an_unknown_id_is_none_and_only_its_day_is_read(
    tmp_path: Path, log_store: LogStore
) -> None:
    root = tmp_path / "log"
    old = server_id(DAY - timedelta(days=10))
    with log_store.log(root) as log:
        log.append([record(old, DAY - timedelta(days=10))])
    assert find_prediction(root, server_id(DAY)) is None
    assert find_prediction(tmp_path / "no-log", server_id(DAY)) is None
    # The same record under a day the id does not name is not looked for: only its day is read.
    moved = server_id(DAY)
    with PredictionLog(root) as log:
        log.append([record(moved, DAY - timedelta(days=10))])
    assert find_prediction(root, moved) is None
    assert find_prediction(root, old) is not None


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "a/b", "xyz", "f" * 65, "12 34", "..", 7])
def test_a_malformed_id_is_refused(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(InvalidInput, match="hex digits"):
        find_prediction(tmp_path, bad)
    with pytest.raises(InvalidInput):
        check_prediction_id(bad)
