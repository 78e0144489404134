"""Every engine follows one contract: ``count`` gives the pandas engine's counts, so every drift
score, flag and quality figure agrees, on a real Spark standalone cluster (two workers) and a
real Dask cluster (two worker processes): a Parquet file, a CSV file and a logged window."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from engine_frames import MakeFrame, assert_same_report, edgy_frame

from shipyard.dataset import Profile, Schema, profile_frame
from shipyard.engines import ENGINES, DaskEngine, Engine, LoggedWindow, PandasEngine, SparkEngine
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import CategoricalState, NumericState, build_report

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]


@pytest.fixture(params=list(ENGINES))
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "spark":
        request.getfixturevalue("spark")  # the session on the standalone cluster is active
        return SparkEngine()
    if request.param == "dask":
        return DaskEngine(scheduler=request.getfixturevalue("dask_scheduler"))
    return PandasEngine()


def _assert_same_counts(ours: Engine, theirs: PandasEngine, *args: object, **kw: object) -> None:
    jobs: list[int] = []

    @contextmanager
    def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        yield jobs.append

    by_engine = ours.count(*args, progress=progress, **kw)  # type: ignore[arg-type]
    by_pandas = theirs.count(*args, **kw)  # type: ignore[arg-type]
    assert jobs and sum(jobs) == (by_pandas.n_rows if ours.name != "spark" else len(jobs))
    for name, state in by_pandas.states.items():
        other = by_engine.states[name]
        assert type(state) is type(other) and np.array_equal(state.counts, other.counts), name
        fields = ["rows", "missing", "violations", "absent"]
        if isinstance(state, NumericState):
            fields += ["nan", "posinf", "neginf"]
        else:
            assert isinstance(other, CategoricalState)
            fields.append("unseen_total")
        assert {f: getattr(other, f) for f in fields} == {f: getattr(state, f) for f in fields}
    assert_same_report(build_report(by_engine), build_report(by_pandas))


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_every_engine_counts_a_file_like_pandas(
    engine: Engine,
    mixed_frame: MakeFrame,
    reference: Profile,
    schema: Schema,
    tmp_path: Path,
    fmt: str,
) -> None:
    frame = edgy_frame(mixed_frame, 3000, 2, drift=True).drop(columns=["segment"])
    frame["extra"] = 1  # not in the reference: listed, ignored
    path = tmp_path / f"current.{fmt}"
    if fmt == "parquet":
        # Three row groups: the cluster engines count several partitions.
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=1000)
        _assert_same_counts(engine, PandasEngine(), reference, path, schema=schema)
    else:
        # Values pandas reads as missing: Spark reads them so too (see _pandas_na).
        frame = frame.drop(columns=["edgy"])
        frame.loc[frame["city"].isna(), "city"] = "n/a"
        frame["as_text"] = frame["as_text"].replace("n/a", None)
        frame.to_csv(path, index=False)
        _assert_same_counts(engine, PandasEngine(), reference, path)


@pytest.mark.parametrize("outputs", [False, True], ids=["inputs", "outputs"])
def test_every_engine_counts_a_logged_window_like_pandas(
    engine: Engine, tmp_path: Path, outputs: bool
) -> None:
    from test_window_stream import START, write_log

    from shipyard.monitoring import window_chunks

    root = tmp_path / "log"
    write_log(root, wal_rows=400)  # Parquet parts over several days, plus the WAL
    start, end = START + timedelta(hours=6), START + timedelta(days=2)
    _, chunks = window_chunks(root, "churn", 1, start, end, outputs=outputs, rows=500)
    reference = profile_frame(pd.concat(list(chunks), ignore_index=True).head(800))
    window = LoggedWindow(root, "churn", 1, start, end, outputs=outputs)
    _assert_same_counts(engine, PandasEngine(), reference, window)
    with pytest.raises(NotFound, match="No logged predictions of churn v9"):
        engine.count(reference, LoggedWindow(root, "churn", 9, start, end, outputs=outputs))


def test_every_engine_says_what_is_wrong_with_a_file(
    engine: Engine, reference: Profile, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="No such file"):
        engine.count(reference, tmp_path / "nope.parquet")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(InvalidInput, match=r"(?i)cannot read|could not read"):
        engine.count(reference, broken)
