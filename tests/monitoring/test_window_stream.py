"""``window_chunks`` streams a log window in bounded chunks and gives the rows (and the drift
report) that one whole-window query gives, across days, versions and the WAL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.dataset import profile_frame
from shipyard.errors import NotFound
from shipyard.monitoring import DriftAccumulator, build_report, logged_window, window_chunks
from shipyard.predlog import PredictionLog

START = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _inputs(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(45, 10, n)
    age[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {"age": age, "plan": rng.choice(["basic", "plus", "pro"], n), "visits": rng.poisson(3, n)}
    )


def write_log(root: Path, *, wal_rows: int = 0) -> pd.DataFrame:
    """Three days of version 1 (plus version 2 and rejected rows, which the window skips);
    the last ``wal_rows`` records stay in the write-ahead log. Returns version 1's ok rows."""
    frame = _inputs(3000, 0)
    stamps = [START + timedelta(minutes=90 * i / 3000 * 24 * 3 / 1.5) for i in range(3000)]
    records = [
        {
            "prediction_id": f"p{i}",
            "ts": ts,
            "model": "churn",
            "version": 1 if i % 10 else 2,
            "inputs": {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()},
            "prediction": "yes" if i % 3 else "no",
            "proba": {"no": 0.25, "yes": 0.75},
            "latency_ms": 1.0,
            "status": "rejected" if i % 7 == 0 else "ok",
        }
        for i, (ts, row) in enumerate(zip(stamps, frame.to_dict(orient="records"), strict=True))
    ]
    log = PredictionLog(root).open()
    log.append(records[: len(records) - wal_rows])
    log.close()
    if wal_rows:
        # A log still open by a server: its last records are only in the WAL.
        live = PredictionLog(root, rotate_seconds=3600).open()
        live.append(records[len(records) - wal_rows :])
        # Not closed: the records stay in the segment; readers see them in the WAL.
        assert live._wal is not None and live._compaction is not None
        live._compaction.stop()  # stop the threads without compacting
        live._wal.close()
        assert list((root / "wal").glob("*.wal"))
    keep = [(i % 10 != 0) and (i % 7 != 0) for i in range(3000)]
    return frame[keep].reset_index(drop=True)


def _whole(root: Path, start: datetime, end: datetime) -> pd.DataFrame:
    frame = PredictionLog(root).query(
        "SELECT * FROM predictions WHERE version = 1 AND status = 'ok' "
        f"AND epoch(ts) >= {start.timestamp()} AND epoch(ts) < {end.timestamp()}",
        model="churn",
    )
    inputs = [c for c in frame.columns if c.startswith("in__")]
    return frame[inputs].rename(columns=lambda c: c.removeprefix("in__"))


@pytest.mark.parametrize("wal_rows", [0, 500], ids=["parquet", "parquet+wal"])
def test_chunks_hold_the_window_rows_and_give_the_same_report(
    tmp_path: Path, wal_rows: int
) -> None:
    root = tmp_path / "log"
    expected = write_log(root, wal_rows=wal_rows)
    days = {p.name for p in (root / "predictions").rglob("date=*")}
    assert len(days) >= 3  # the window spans several partitions
    start, end = START - timedelta(hours=1), START + timedelta(days=4)
    total, chunks = window_chunks(root, "churn", 1, start, end, outputs=False, rows=256)
    parts = list(chunks)
    assert total == len(expected) and max(len(p) for p in parts) <= 256 and len(parts) > 5
    streamed = pd.concat(parts, ignore_index=True)
    whole = _whole(root, start, end)
    key = ["age", "plan", "visits"]
    pd.testing.assert_frame_equal(
        streamed.sort_values(key, ignore_index=True)[key],
        whole.sort_values(key, ignore_index=True)[key],
        check_dtype=False,
    )
    assert sorted(streamed["plan"]) == sorted(expected["plan"])
    reference = profile_frame(_inputs(5000, 1))
    by_chunks = build_report(DriftAccumulator(reference).update(pd.concat(parts)))
    acc = DriftAccumulator(reference)
    for part in parts:
        acc.update(part)
    assert build_report(acc).model_dump(exclude={"elapsed_seconds"}) == by_chunks.model_dump(
        exclude={"elapsed_seconds"}
    )
    assert acc.states["age"].missing == int(expected["age"].isna().sum())


def test_the_window_bounds_and_outputs(tmp_path: Path) -> None:
    root = tmp_path / "log"
    write_log(root)
    one_day = (START, START + timedelta(days=1))
    total, chunks = window_chunks(root, "churn", 1, *one_day, outputs=True, rows=1000)
    frame = pd.concat(list(chunks), ignore_index=True)
    assert total == len(frame) == len(_whole(root, *one_day)) > 0
    assert list(frame.columns) == ["prediction", "proba_no", "proba_yes"]
    assert set(frame["prediction"]) == {"yes", "no"}
    assert len(logged_window(root, "churn", 1, *one_day, outputs=False)) == total
    with pytest.raises(NotFound, match="No logged predictions of churn v3"):
        window_chunks(root, "churn", 3, *one_day, outputs=False)
    with pytest.raises(NotFound, match="Widen --window"):
        window_chunks(root, "churn", 1, START - timedelta(days=9), START, outputs=False)


@pytest.mark.parametrize("row_group", [3000, 10_000])
def test_file_chunks_stream_parquet_and_csv(tmp_path: Path, row_group: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shipyard.dataset import file_chunks

    frame = _inputs(10_000, 3)
    path = tmp_path / "current.parquet"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, row_group_size=row_group)
    total, chunks = file_chunks(path, rows=1000)
    parts = [batch.to_pandas() for batch in chunks]
    assert total == 10_000 and len(parts) == 10 and max(len(p) for p in parts) == 1000
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), frame)
    csv = tmp_path / "current.csv"
    frame.to_csv(csv, index=False)
    total, chunks = file_chunks(csv, rows=4000)
    assert total is None and [len(c) for c in chunks] == [4000, 4000, 2000]


def test_file_chunks_refuse_unreadable_files(tmp_path: Path) -> None:
    from shipyard.dataset import file_chunks
    from shipyard.errors import InvalidInput

    with pytest.raises(InvalidInput, match="No such file"):
        file_chunks(tmp_path / "none.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet")
    with pytest.raises(InvalidInput, match=r"Cannot read .* as Parquet"):
        file_chunks(junk)
    other = tmp_path / "data.json"
    other.write_text("{}")
    with pytest.raises(InvalidInput, match="neither Parquet"):
        file_chunks(other)
