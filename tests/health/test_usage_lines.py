"""The log's answer lines with usage values, beside lines written before usage was kept."""

from __future__ import annotations

from pathlib import Path

import orjson

from shipyard.predlog import Answers, PredictionLog, query
from shipyard.predlog._decode import decode_segment
from shipyard.predlog._wal import PREDICTION, PartitionKey, list_segments

KEY = PartitionKey(PREDICTION, "churn", 1)
LAYOUT = b'{"layout":0,"columns":["age"],"classes":["no","yes"]}\n'


def _line(*values: object) -> bytes:
    return orjson.dumps(list(values)) + b"\n"


def test_old_and_new_answer_lines_decode_together() -> None:
    data = (
        LAYOUT
        + _line(0, "old", 1.0, 2.0, "production", "no", [41], [0.9, 0.1])  # before usage
        + _line(0, "new", 1.0, 2.0, "production", "yes", [42], [0.2, 0.8], "web", "risk", 0.5, 2)
        + _line(0, "anon", 1.0, 2.0, "production", "no", [43], [0.7, 0.3], None, None, None, 1)
    )
    bad: list[bytes] = []
    table = decode_segment(KEY, data, bad)
    assert table is not None and not bad
    rows = {r["prediction_id"]: r for r in table.to_pylist()}
    assert rows["old"]["caller"] is None and rows["old"]["request_rows"] is None
    assert rows["new"]["caller"] == "web" and rows["new"]["team"] == "risk"
    assert rows["new"]["compute_ms"] == 0.5 and rows["new"]["request_rows"] == 2
    assert rows["new"]["proba__yes"] == 0.8 and rows["new"]["in__age"] == 42
    assert rows["anon"]["team"] is None and rows["anon"]["request_rows"] == 1


def test_a_damaged_usage_value_sets_only_its_line_aside() -> None:
    good = _line(0, "good", 1.0, 2.0, "production", "yes", [42], [0.2, 0.8], "web", "risk", 0.5, 1)
    damaged = _line(0, "bad", 1.0, 2.0, "production", "yes", [42], [0.2, 0.8], "web", 7, 0.5, "x")
    bad: list[bytes] = []
    table = decode_segment(KEY, LAYOUT + good + damaged, bad)
    assert table is not None
    assert table.column("prediction_id").to_pylist() == ["good"]
    assert bad == [damaged.rstrip(b"\n")]


def test_answers_keep_their_usage_through_wal_and_parquet(tmp_path: Path) -> None:
    answers = Answers(
        "churn",
        1,
        "production",
        1.0e9,
        3.0,
        ["p1", "p2"],
        ["age"],
        [[41], [42]],
        ["no", "yes"],
        caller="web",
        team="risk",
        compute_ms=1.5,
    )
    log = PredictionLog(tmp_path).open()
    log.append_answers(answers)
    sql = "SELECT prediction_id, caller, team, compute_ms, request_rows FROM predictions"
    from_wal = query(tmp_path, sql + " ORDER BY 1", model="churn")
    log.close()  # compacts to Parquet
    assert not list_segments(tmp_path / "wal")
    from_parquet = query(tmp_path, sql + " ORDER BY 1", model="churn")
    expected = [["p1", "web", "risk", 1.5, 2], ["p2", "web", "risk", 1.5, 2]]
    assert from_wal.values.tolist() == expected
    assert from_parquet.values.tolist() == expected
    assert [r["request_rows"] for r in answers.records()] == [2, 2]
