"""Answer lines (``PredictionLog.append_answers``): what the server logs per answered request.

They must land exactly as the same records given to ``append`` would: same columns, types
and values, through the WAL (live queries) and through Parquet (after compaction).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.predlog import Answers, PredictionLog
from shipyard.predlog._wal import list_segments

QUERY = "SELECT * EXCLUDE (date) FROM predictions ORDER BY prediction_id"


def answers(
    rows: list[list[Any]],
    columns: list[str] | None = None,
    *,
    classes: list[str] | None = None,
    version: int = 1,
    arm: str = "production",
) -> Answers:
    ids = [f"{uuid.uuid4()}" for _ in rows]
    predictions: list[Any] = [i % 2 for i in range(len(rows))]
    proba = None if classes is None else [[0.25, 0.75] for _ in rows]
    return Answers(
        model="churn",
        version=version,
        arm=arm,
        ts=1_790_000_000.125,
        latency_ms=0.4,
        ids=ids,
        columns=columns or ["age", "plan"],
        rows=rows,
        predictions=predictions,
        proba=proba,
        classes=classes,
    )


BATCHES = [
    # a classifier's answers, one row and several
    answers([[41, "gold"]], classes=["0", "1"]),
    answers([[35, "basic"], [52, None], [29, "pro"]], classes=["0", "1"]),
    # the same columns in another order (another layout in the same segment)
    answers([["pro", 61]], ["plan", "age"], classes=["0", "1"]),
    # a float where ints came before; a regressor's answers (no classes)
    answers([[41.5, "gold"]], classes=["0", "1"]),
    answers([[20, "basic"]], version=2),
    # a value whose type conflicts within one version: kept as text, as append does
    answers([[21, 7]], version=2),
]


def _frames(tmp_path: Path, compact: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = []
    for name, how in (("records", "append"), ("answers", "append_answers")):
        log = PredictionLog(tmp_path / name, rotate_seconds=3600).open()
        for batch in BATCHES:
            if how == "append":
                log.append(batch.records())
            else:
                log.append_answers(batch)
        if compact:
            log.flush()
        out.append(log.query(QUERY, model="churn"))
        log.close()
    return out[0], out[1]


@pytest.mark.parametrize("compact", [False, True], ids=["from the WAL", "from Parquet"])
def test_answers_land_as_the_same_records_would(tmp_path: Path, compact: bool) -> None:
    by_records, by_answers = _frames(tmp_path, compact)
    assert len(by_answers) == sum(len(b.ids) for b in BATCHES) == 8
    assert list(by_answers.columns) == list(by_records.columns)
    assert by_answers.dtypes.to_dict() == by_records.dtypes.to_dict()
    pd.testing.assert_frame_equal(by_answers, by_records)
    # and the values are the ones sent
    row = by_answers.set_index("prediction_id").loc[BATCHES[2].ids[0]]
    assert (row["in__plan"], row["in__age"], row["arm"]) == ("pro", 61, "production")
    assert row["proba__1"] == 0.75 and row["status"] == "ok"
    assert by_answers.set_index("prediction_id").loc[BATCHES[5].ids[0], "in__plan"] == "7"
    assert str(row["ts"]) == "2026-09-21 14:13:20.125000+00:00"  # 1_790_000_000.125


def test_the_names_are_written_once_per_segment(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log", rotate_seconds=3600).open()
    for _ in range(50):
        log.append_answers(answers([[41, "gold"]], classes=["0", "1"]))
    log.append_answers(answers([["gold", 41]], ["plan", "age"], classes=["0", "1"]))
    (segment,) = list_segments(tmp_path / "log" / "wal")
    lines = segment.read_bytes().splitlines()
    assert len(lines) == 51 + 2  # two layouts, each once
    assert sum(line.startswith(b'{"layout":') for line in lines) == 2
    # A new segment (after rotation) carries its own layout line: it decodes alone.
    log.flush()
    log.append_answers(answers([[41, "gold"]], classes=["0", "1"]))
    (segment,) = list_segments(tmp_path / "log" / "wal")
    assert segment.read_bytes().startswith(b'{"layout":')
    assert len(log.query(QUERY, model="churn")) == 52
    log.close()


def test_numpy_values_in_answers_are_logged(tmp_path: Path) -> None:
    with PredictionLog(tmp_path / "log") as log:
        log.append_answers(answers([[np.int64(41), np.str_("gold")]], classes=["0", "1"]))
        frame = log.query(QUERY, model="churn")
    assert (frame["in__age"][0], frame["in__plan"][0]) == (41, "gold")


def test_an_answer_without_its_layout_is_set_aside(tmp_path: Path) -> None:
    root = tmp_path / "log"
    log = PredictionLog(root, rotate_seconds=3600).open()
    kept = answers([[41, "gold"]], classes=["0", "1"])
    log.append_answers(kept)
    segment = next(iter(log._wal._active.values()))
    orphan = b'[99,"x",1790000000.0,0.4,"production",1,[41,"gold"],[0.2,0.8]]'
    short = b'[0,"y",1790000000.0,0.4,"production",1,[41],[0.2,0.8]]'
    import os

    os.write(segment.fd, orphan + b"\n" + short + b"\n")
    log.close()
    frame = PredictionLog(root).query(QUERY, model="churn")
    assert frame["prediction_id"].tolist() == kept.ids
    (damaged,) = (root / "wal" / "damaged").iterdir()
    assert sorted(damaged.read_bytes().splitlines()) == sorted([orphan, short])


def test_an_empty_answer_writes_nothing(tmp_path: Path) -> None:
    with PredictionLog(tmp_path / "log") as log:
        log.append_answers(answers([]))
        assert log.queue_depth == 0
        assert list_segments(tmp_path / "log" / "wal") == []


def test_a_client_sending_every_column_order_cannot_grow_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Layouts are remembered up to a bound; past it the memory is cleared and ids go on
    growing, so two layouts never share an id within a segment."""
    import shipyard.predlog._writer as writer

    monkeypatch.setattr(writer, "_MAX_LAYOUTS", 2)
    values = {"age": 41, "plan": "gold", "seats": 3}
    orders = [
        ["age", "plan", "seats"],
        ["plan", "age", "seats"],
        ["seats", "age", "plan"],  # a third: the memory is cleared first
        ["age", "plan", "seats"],  # forgotten: learned again, under a new id
    ]
    batches = [answers([[values[c] for c in order]], order) for order in orders]
    with PredictionLog(tmp_path / "log", rotate_seconds=3600) as log:
        for batch in batches:
            log.append_answers(batch)
        assert len(log._wal._layouts) <= 2
        (segment,) = list_segments(tmp_path / "log" / "wal")
        layout_ids = [
            int(line.split(b",")[0].split(b":")[1])
            for line in segment.read_bytes().splitlines()
            if line.startswith(b'{"layout":')
        ]
        assert layout_ids == [0, 1, 2, 3]  # re-learned after the clear, under new ids
        frame = log.query(QUERY, model="churn")
    assert frame[["in__age", "in__plan", "in__seats"]].values.tolist() == [[41, "gold", 3]] * 4
