"""The prediction log: layout, schemas, rejections, feedback, queries and metrics; with its
Parquet on local disk, SeaweedFS and moto (``log_store``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from predlog_stores import LogStore

from shipyard.errors import InvalidInput
from shipyard.predlog import INVALID_MODEL, FeedbackResult, PredictionLog, PredictionSink


@pytest.fixture
def log(tmp_path: Path, log_store: LogStore) -> Iterator[PredictionLog]:
    # Long rotation: tests decide when data moves to Parquet (flush), not the clock.
    with log_store.log(tmp_path / "log", rotate_seconds=3600) as opened:
        yield opened


@pytest.fixture
def local_log(tmp_path: Path) -> Iterator[PredictionLog]:
    """For what does not depend on where the Parquet is (input checks): local disk only."""
    with PredictionLog(tmp_path / "log", rotate_seconds=3600) as opened:
        yield opened


def record(model: str = "churn", version: int | None = 3, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prediction_id": str(uuid.uuid4()),
        "model": model,
        "version": version,
        "arm": "production",
        "inputs": {"age": 41, "plan": "gold"},
        "prediction": 1,
        "proba": {"0": 0.25, "1": 0.75},
        "latency_ms": 0.4,
    }
    out.update(fields)
    return out


def test_is_a_prediction_sink(local_log: PredictionLog) -> None:
    assert isinstance(local_log, PredictionSink)


def test_partitions_are_hive_style_by_model_version_and_date(
    log: PredictionLog, log_store: LogStore
) -> None:
    day = datetime(2026, 11, 23, 10, tzinfo=UTC)
    log.append([record(ts=day), record(version=4, ts=day.timestamp() + 86_400)])
    log.append([record("fraud", 1, inputs={"amount": 9.5}, prediction="ok", proba=None)])
    log.flush()
    parts = sorted(p.rsplit("/", 1)[0] for p in log_store.files(Path(log.root)))
    today = datetime.now(UTC).date().isoformat()  # the fraud record has no ts: now
    assert parts == [
        "predictions/model=churn/version=3/date=2026-11-23",
        "predictions/model=churn/version=4/date=2026-11-24",
        f"predictions/model=fraud/version=1/date={today}",
    ]
    churn = log.query("SELECT * FROM predictions ORDER BY ts", model="churn")
    assert list(churn["version"]) == [3, 4]
    assert list(churn["in__age"]) == [41, 41]
    assert list(churn["proba__1"]) == [0.75, 0.75]
    assert str(churn["ts"].dtype) == "datetime64[us, UTC]"
    assert churn["ts"].iloc[0] == pd.Timestamp(day)
    fraud = log.query("SELECT * FROM predictions", model="fraud")
    assert "in__age" not in fraud.columns  # each model has its own schema
    assert list(fraud["in__amount"]) == [9.5]
    assert list(fraud["prediction"]) == ["ok"]


def test_a_partition_that_gains_a_column_keeps_one_schema(
    log: PredictionLog, log_store: LogStore
) -> None:
    log.append([record(inputs={"age": 41})])
    log.flush()
    log.append([record(inputs={"age": 42.5, "plan": "gold"})])
    log.flush()
    parts = log_store.files(Path(log.root))
    assert len(parts) == 2
    newest = log_store.read_schema(Path(log.root), parts[-1])
    assert str(newest.field("in__age").type) == "double"  # promoted from int64
    assert "in__plan" in newest.names
    frame = log.query("SELECT in__age, in__plan FROM predictions ORDER BY in__age", model="churn")
    assert frame["in__age"].tolist() == [41.0, 42.5]
    assert frame["in__plan"].isna().tolist() == [True, False]


def test_two_models_may_type_one_feature_differently(local_log: PredictionLog) -> None:
    local_log.append(
        [record("churn", inputs={"region": 3}), record("fraud", inputs={"region": "eu"})]
    )
    assert (
        local_log.query("SELECT in__region FROM predictions", model="churn")["in__region"][0] == 3
    )
    assert (
        local_log.query("SELECT in__region FROM predictions", model="fraud")["in__region"][0]
        == "eu"
    )


def test_a_type_change_within_a_version_is_kept_as_text(log: PredictionLog) -> None:
    log.append([record(inputs={"zip": 1000}), record(inputs={"zip": "10A"})])
    log.flush()
    zips = log.query("SELECT in__zip FROM predictions ORDER BY in__zip", model="churn")
    assert zips["in__zip"].tolist() == ["1000", "10A"]


def test_rejections_are_stored_with_their_reason(log: PredictionLog) -> None:
    log.append([{"model": "churn", "status": "rejected", "reason": "missing column 'age'"}])
    log.append([{"model": "../etc", "status": "rejected", "reason": "unknown model"}])
    log.flush()
    frame = log.query("SELECT * FROM predictions", model="churn")
    assert frame["status"].tolist() == ["rejected"]
    assert frame["reason"].tolist() == ["missing column 'age'"]
    assert frame["version"].isna().all()
    assert uuid.UUID(frame["prediction_id"][0])  # a fresh id all the same
    bad = log.query("SELECT reason FROM predictions", model=INVALID_MODEL)
    assert bad["reason"].tolist() == ["unknown model"]


def test_numpy_values_and_integer_class_keys_are_logged(local_log: PredictionLog) -> None:
    local_log.append(
        [record(inputs={"age": np.int64(7)}, prediction=np.int64(1), proba={0: 0.1, 1: 0.9})]
    )
    frame = local_log.query("SELECT in__age, prediction, proba__1 FROM predictions", model="churn")
    assert frame.iloc[0].tolist() == [7, 1, 0.9]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"prediction_id": "x"}, "needs 'model'"),
        ({"model": "churn"}, "needs 'prediction_id'"),
        ({"model": "churn", "prediction_id": "x", "status": "maybe"}, "must be 'ok' or"),
        ({"model": "churn", "prediction_id": "x", "version": "3"}, "version must be an int"),
        ({"model": "../x", "prediction_id": "x"}, "Invalid model name"),
        ({"model": "churn", "prediction_id": "x", "ts": "yesterday"}, "epoch seconds"),
    ],
)
def test_bad_records_are_refused(
    local_log: PredictionLog, bad: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        local_log.append([bad])


def test_append_needs_an_open_log(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="call open"):
        PredictionLog(tmp_path).append([record()])


def test_metrics_count_what_is_not_yet_in_parquet(log: PredictionLog) -> None:
    assert (log.queue_depth, log.lag_seconds) == (0, 0.0)
    log.append([record(), record()])
    log.append([record("fraud")])
    assert log.queue_depth == 3
    assert log.lag_seconds >= 0.0
    log.flush()
    assert (log.queue_depth, log.lag_seconds) == (0, 0.0)


def test_time_rotation_compacts_in_the_background(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, rotate_seconds=0.05, fsync_interval=0.01) as log:
        log.append([record()])
        deadline = datetime.now(UTC).timestamp() + 10
        while log.queue_depth and datetime.now(UTC).timestamp() < deadline:
            time.sleep(0.02)
        assert log.queue_depth == 0
        assert len(list(tmp_path.rglob("part-*.parquet"))) == 1


def test_strict_fsync_mode_logs_too(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, fsync_interval=0) as log:
        log.append([record()])
        assert len(log.query("SELECT * FROM predictions", model="churn")) == 1


def test_feedback_joins_predictions_by_id(log: PredictionLog, log_store: LogStore) -> None:
    records = [record(prediction=i % 2) for i in range(4)]
    log.append(records)
    log.flush()  # two predictions in Parquet, two still in the WAL
    log.append(extra := [record(prediction=1), record(prediction=0)])
    ids = [r["prediction_id"] for r in records + extra]

    assert log.record_feedback("churn", ids[0], 0) == FeedbackResult(matched=1, unknown=0)
    labels = pd.DataFrame({"prediction_id": [*ids[1:], "nope"], "label": [1, 0, 1, 1, 0, 1]})
    result = log.record_feedback_frame("churn", labels)
    assert result == FeedbackResult(matched=5, unknown=1, unknown_ids=["nope"])

    joined = log.query(
        "SELECT p.prediction_id, p.prediction, f.label FROM predictions p "
        "JOIN feedback f USING (prediction_id) ORDER BY p.ts",
        model="churn",
    )
    assert joined["prediction_id"].tolist() == ids
    assert joined["label"].tolist() == [0, 1, 0, 1, 1, 0]
    log.flush()
    assert len(log.query("SELECT * FROM feedback", model="churn")) == 6
    assert log_store.files(Path(log.root))[0].startswith("feedback/model=churn/date=")


def test_feedback_for_another_model_or_a_rejection_is_unknown(log: PredictionLog) -> None:
    ok = record("fraud")
    rejected = {"model": "churn", "prediction_id": "r1", "status": "rejected", "reason": "x"}
    log.append([ok, rejected])
    assert log.record_feedback("churn", ok["prediction_id"], 1).unknown == 1
    assert log.record_feedback("churn", "r1", 1).unknown == 1
    assert len(log.query("SELECT * FROM feedback", model="churn")) == 0


def test_feedback_times_are_kept(log: PredictionLog) -> None:
    r = record()
    log.append([r])
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    log.record_feedback("churn", r["prediction_id"], "yes", ts=when)
    frame = log.query("SELECT ts, label, date FROM feedback", model="churn")
    assert frame["ts"][0] == pd.Timestamp(when)
    assert frame["label"][0] == "yes"


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"prediction_id": ["a"]}), "missing \\['label'\\]"),
        (pd.DataFrame({"prediction_id": [1], "label": [1]}), "must hold non-empty strings"),
        (pd.DataFrame({"prediction_id": ["a"], "label": [[1, 2]]}), "Got list instead"),
        (pd.DataFrame({"prediction_id": ["a"], "label": [np.nan]}), "1 missing or non-finite"),
        (pd.DataFrame({"prediction_id": ["a"], "label": [1], "ts": ["x"]}), "datetimes or epoch"),
        (pd.DataFrame({"prediction_id": [], "label": []}), "Feedback is empty"),
        ([{"prediction_id": "a", "label": 1}], "must be a pandas DataFrame"),
    ],
)
def test_bad_feedback_is_refused(local_log: PredictionLog, frame: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        local_log.record_feedback_frame("churn", frame)


def test_query_errors_are_invalid_input_with_duckdbs_message(local_log: PredictionLog) -> None:
    with pytest.raises(InvalidInput, match=r"The SQL query failed: .*nothere"):
        local_log.query("SELECT * FROM nothere", model="churn")
    with pytest.raises(InvalidInput, match="syntax error"):
        local_log.query("SELEC 1", model="churn")


def test_query_cannot_read_other_files(log: PredictionLog, tmp_path: Path) -> None:
    secret = tmp_path.parent / "secret.csv"
    secret.write_text("a\n1\n")
    with pytest.raises(InvalidInput, match="disabled by configuration"):
        log.query(f"SELECT * FROM read_csv('{secret}')", model="churn")


def test_an_empty_log_still_has_the_views(log: PredictionLog) -> None:
    frame = log.query("SELECT * FROM predictions", model="churn")
    assert frame.empty
    assert {"prediction_id", "ts", "model", "version", "date", "status"} <= set(frame.columns)
    assert log.query("SELECT count(*) AS n FROM feedback", model="churn")["n"][0] == 0
