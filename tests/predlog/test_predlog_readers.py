"""The log's public readers, which need no open log: ``read_window``, ``query``,
``join_feedback``, ``labelled_rows``, ``expired_partitions``; and the facade's constructor,
which only stores. With the Parquet on local disk, SeaweedFS and moto (``log_store``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from predlog_stores import LogStore

from shipyard.errors import InvalidInput
from shipyard.predlog import (
    PredictionLog,
    expired_partitions,
    join_feedback,
    labelled_rows,
    partitions_before,
    query,
    read_window,
)

DAY = datetime(2026, 11, 23, 12, tzinfo=UTC)


def record(version: int, ts: datetime, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prediction_id": str(uuid.uuid4()),
        "ts": ts,
        "model": "churn",
        "version": version,
        "inputs": {"age": 41},
        "prediction": 1,
        "proba": {"0": 0.25, "1": 0.75},
    }
    out.update(fields)
    return out


@pytest.fixture
def root(tmp_path: Path, log_store: LogStore) -> Iterator[Path]:
    """Three days of v1 and one of v2 in Parquet, plus v1 rows of DAY still in the WAL."""
    root = tmp_path / "log"
    with log_store.log(root) as log:
        log.append([record(1, DAY - timedelta(days=d)) for d in (0, 1, 2)])
        log.append([record(2, DAY)])
    live = PredictionLog(root, rotate_seconds=3600).open()  # its store.json says where
    live.append([record(1, DAY + timedelta(minutes=m)) for m in (1, 2)])
    yield root
    live.close()


def test_read_window_reads_one_version_and_time_window_once(
    root: Path, log_store: LogStore
) -> None:
    window = read_window(
        root, "churn", version=1, start=DAY - timedelta(hours=1), end=DAY.replace(hour=23)
    )
    assert window.wal is not None and window.wal.num_rows == 2  # the open segment
    assert len(window.parts) == 3  # v1's three days; v2's part is not read
    assert all("/version=1/" in p for p in window.parts)
    assert [p.split("/")[-2] for p in window.day_parts()] == [
        "date=2026-11-22",
        "date=2026-11-23",
    ]
    if log_store.url is None:
        assert window.base == root.resolve() / "predictions"
        assert window.filesystem is None
    else:  # URIs of the store, and the filesystem that reads them
        assert window.base == f"{log_store.url}/predictions"
        assert all(p.startswith(f"{log_store.url}/predictions/") for p in window.parts)
        assert window.filesystem.exists(window.parts[0])
    with window.connect() as con:
        assert con.execute("SELECT count(*) FROM predictions").fetchone() == (3,)  # 1 + 2 WAL
        with pytest.raises(duckdb.CatalogException, match="feedback"):
            con.execute("SELECT * FROM feedback")  # not read: no view


def test_query_sees_every_version_and_time(root: Path) -> None:
    frame = query(
        root, "SELECT version, count(*) AS n FROM predictions GROUP BY 1 ORDER BY 1", model="churn"
    )
    assert frame.to_dict(orient="list") == {"version": [1, 2], "n": [5, 1]}
    with pytest.raises(InvalidInput, match="Invalid model name"):
        read_window(root, "../etc")


def test_join_feedback_gives_the_window_predictions_and_their_labels(tmp_path: Path) -> None:
    rows = [record(1, DAY + timedelta(minutes=m)) for m in range(3)]
    with PredictionLog(tmp_path) as log:
        log.append(rows)
        assert log.record_feedback("churn", rows[0]["prediction_id"], 1).matched == 1
    predictions, labels = join_feedback(
        tmp_path, "churn", version=1, start=DAY, end=DAY + timedelta(hours=1)
    )
    assert sorted(predictions.columns) == [
        "prediction",
        "prediction_id",
        "proba__0",
        "proba__1",
        "ts",
    ]
    assert len(predictions) == 3
    assert labels[["prediction_id", "label"]].values.tolist() == [[rows[0]["prediction_id"], 1]]
    none, no_labels = join_feedback(
        tmp_path, "churn", version=2, start=DAY, end=DAY + timedelta(hours=1)
    )
    assert len(none) == 0 and len(no_labels) == 0


def test_labelled_rows_come_back_in_the_order_a_learner_learns_them(tmp_path: Path) -> None:
    """Labels by when they were recorded, a request's by prediction id, each with the
    inputs of its prediction (the first answer of an id answered twice)."""
    with PredictionLog(tmp_path / "log") as log:
        records = [
            {"prediction_id": pid, "model": "fraud", "version": 1, "inputs": {"a": a}}
            for pid, a in (("0b", 2.0), ("0a", 1.0), ("0c", 3.0), ("0b", 9.0))
        ]
        log.append([{**r, "ts": 1_000.0 + i, "prediction": True} for i, r in enumerate(records)])
        for labels, ts in (({"0c": True, "0a": False}, 2_000.0), ({"0b": True}, 3_000.0)):
            frame = pd.DataFrame({"prediction_id": list(labels), "label": list(labels.values())})
            log.record_feedback_frame("fraud", frame.assign(ts=ts))
        log.flush()
    found = labelled_rows(tmp_path / "log", "fraud")
    assert found.inputs["a"].tolist() == [1.0, 3.0, 2.0] and found.labels == [False, True, True]
    assert found.stamps == [2_000.0, 2_000.0, 3_000.0]
    assert len(labelled_rows(tmp_path / "log", "fraud", since=2_500.0)) == 1
    assert labelled_rows(tmp_path / "log", "fraud", last=2).labels == [True, True]


def test_expired_partitions_lists_compacted_days_only(root: Path, log_store: LogStore) -> None:
    expected = [
        "ids/date=2026-11-21",
        "ids/date=2026-11-22",
        "predictions/model=churn/version=1/date=2026-11-21",
        "predictions/model=churn/version=1/date=2026-11-22",
    ]
    old = expired_partitions(root, date(2026, 11, 23))
    assert [p.path for p in old] == expected
    assert all(p.files >= 1 and p.bytes > 0 for p in old)  # ids/ may hold a merge lock
    if log_store.url is None:
        found = partitions_before(root, date(2026, 11, 23))
        assert [p.relative_to(root).as_posix() for p in found] == expected
    else:  # the same from the store's URL alone
        assert [p.path for p in expired_partitions(log_store.url, date(2026, 11, 23))] == expected
    assert partitions_before(root / "nowhere", date(2030, 1, 1)) == []
    assert expired_partitions(root / "nowhere", date(2030, 1, 1)) == []


def test_the_constructor_only_stores_its_arguments(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log", compactor="fork")  # type: ignore[arg-type]
    assert not (tmp_path / "log").exists()
    assert (log.queue_depth, log.lag_seconds, log.dropped, log.compactor_pid) == (0, 0.0, 0, None)
    with pytest.raises(InvalidInput, match="compactor must be 'thread' or 'process'\\. Got 'fork'"):
        log.open()
    with pytest.raises(InvalidInput, match="call open"):
        log.append_answers(None)  # type: ignore[arg-type]
