"""``--engine spark`` counts what the pandas engine counts: every score and flag agrees."""

from __future__ import annotations

import json
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
from pyspark.sql import SparkSession

from shipyard.dataset import Profile, Schema, profile_frame
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import (
    CategoricalState,
    DriftAccumulator,
    NumericState,
    build_report,
    spark_accumulate,
)
from shipyard.monitoring._spark import _bucketizer, grid_splits, read_spark_table, spark_window

# PySpark 4.x warns on every pandas conversion (the fallback path) that it "does not yet fully
# support pandas >= 3.0.0"; the equality tests below tell whether the path works.
pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)


def _write(frame: pd.DataFrame, path: Path) -> Path:
    # Several row groups and files, so both engines see several chunks and partitions.
    path.mkdir()
    half = len(frame) // 2
    for i, part in enumerate((frame.iloc[:half], frame.iloc[half:])):
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False),
            path / f"p{i}.parquet",
            row_group_size=1500,
        )
    return path


def _pandas_engine(reference: Profile, path: Path, schema: Schema | None) -> DriftAccumulator:
    accumulator = DriftAccumulator(reference, schema=schema)
    for file in sorted(path.glob("*.parquet")):
        for batch in pq.ParquetFile(file).iter_batches(batch_size=2000):
            accumulator.update(batch)
    return accumulator


@pytest.mark.parametrize("drift", [False, True], ids=["steady", "drifted"])
@pytest.mark.parametrize("with_schema", [False, True], ids=["no-schema", "schema"])
def test_spark_scores_like_pandas(
    spark: SparkSession,
    mixed_frame: MakeFrame,
    reference: Profile,
    schema: Schema,
    tmp_path: Path,
    drift: bool,
    with_schema: bool,
) -> None:
    frame = edgy_frame(mixed_frame, 6000, 2 if drift else 3, drift=drift)
    frame["extra"] = 1  # not in the reference: listed, ignored
    path = _write(frame.drop(columns=["segment"]), tmp_path / "current")  # absent column
    used = schema if with_schema else None
    by_pandas = _pandas_engine(reference, path, used)
    jobs: list[int] = []
    totals: list[int | None] = []

    @contextmanager
    def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        totals.append(total)
        yield jobs.append

    by_spark = spark_accumulate(
        reference, spark.read.parquet(str(path)), schema=used, progress=progress
    )
    assert jobs == [1, 1, 1] and totals == [3]  # totals, grouped counts, pandas-rules columns
    for name, state in by_pandas.states.items():
        other = by_spark.states[name]
        assert type(state) is type(other)
        assert np.array_equal(state.counts, other.counts), name
        fields = ["rows", "missing", "violations", "absent"]
        if isinstance(state, NumericState):
            fields += ["nan", "posinf", "neginf"]
        else:
            fields.append("unseen_total")
        assert {f: getattr(other, f) for f in fields} == {f: getattr(state, f) for f in fields}
    assert_same_report(build_report(by_spark), build_report(by_pandas))
    report = build_report(by_spark)
    if drift:
        flagged = set(report.flagged())
        assert {"income", "score", "colour", "balance", "plan", "grade", "constant"} <= flagged
        assert report.feature("segment").quality[0].name == "absent"
        assert report.feature("segment").quality_breached
        if with_schema:
            assert (
                next(
                    q for q in report.feature("counted").quality if q.name == "type_violations"
                ).count
                == 20
            )
    assert report.unexpected_columns == ["extra"]


def test_unseen_categories_keep_the_most_frequent_names(
    spark: SparkSession, tmp_path: Path
) -> None:
    reference = profile_frame(pd.DataFrame({"c": ["a", "b"] * 50}))
    values = ["a"] * 10 + [f"new{i:03d}" for i in range(150) for _ in range(1 + (i < 3))]
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"c": values}), path)
    state = spark_accumulate(reference, spark.read.parquet(str(path))).states["c"]
    assert isinstance(state, CategoricalState)
    assert state.counts.tolist() == [10, 0] and state.unseen_total == 153
    assert len(state.unseen) == 100
    assert state.unseen["new000"] == state.unseen["new002"] == 2


def test_csv_input_scores_like_pandas(
    spark: SparkSession, mixed_frame: MakeFrame, reference: Profile, tmp_path: Path
) -> None:
    frame = edgy_frame(mixed_frame, 2500, 4, drift=True).drop(columns=["edgy"])
    frame.loc[frame["city"].isna(), "city"] = "n/a"  # pandas reads it as missing: so does Spark
    frame["as_text"] = frame["as_text"].replace("n/a", None)
    path = tmp_path / "current.csv"
    frame.to_csv(path, index=False)
    by_pandas = DriftAccumulator(reference)
    for chunk in pd.read_csv(path, chunksize=2000):
        by_pandas.update(chunk)
    by_spark = spark_accumulate(reference, read_spark_table(spark, path))
    assert by_spark.states["city"].missing == by_pandas.states["city"].missing > 0
    assert_same_report(build_report(by_spark), build_report(by_pandas))


def test_grid_splits_give_each_grid_point_its_own_bucket() -> None:
    a = 1.0
    b = float(np.nextafter(a, 2.0))  # adjacent doubles: the open interval between is empty
    splits, counters = grid_splits(np.array([a, b, 3.0]))
    assert splits == [
        -np.inf,
        a,
        b,
        float(np.nextafter(b, 3.0)),
        3.0,
        float(np.nextafter(3.0, 4.0)),
        np.inf,
    ]
    assert counters == [0, 1, 3, 4, 5, 6]


def test_the_bucketizer_gets_every_split_exactly(spark: SparkSession) -> None:
    # The splits travel as one JSON text: adjacent doubles, long fractions, huge values and
    # the infinities must all arrive as the very same doubles.
    a = 0.1 + 0.2
    splits, _ = grid_splits(np.array([-1e300, a, float(np.nextafter(a, 1.0)), 7.0, 1e300]))
    bucketizer = _bucketizer([("v0", "b0", splits), ("v1", "b1", [-np.inf, 0.0, np.inf])])
    sent = [list(s) for s in bucketizer._java_obj.getSplitsArray()]
    assert sent == [splits, [-np.inf, 0.0, np.inf]]
    assert bucketizer.getInputCols() == ["v0", "v1"] and bucketizer.getOutputCols() == ["b0", "b1"]
    assert bucketizer.getHandleInvalid() == "keep"


def test_unreadable_sources_say_what_is_wrong(spark: SparkSession, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="No such file"):
        read_spark_table(spark, tmp_path / "nope.parquet")
    bad = tmp_path / "data.json"
    bad.write_text("{}")
    with pytest.raises(InvalidInput, match="neither Parquet"):
        read_spark_table(spark, bad)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(InvalidInput, match="Spark cannot read"):
        read_spark_table(spark, broken).count()


@pytest.mark.parametrize("outputs", [False, True], ids=["inputs", "outputs"])
def test_the_log_window_counts_like_pandas(
    spark: SparkSession, tmp_path: Path, outputs: bool
) -> None:
    from test_window_stream import START, write_log

    from shipyard.monitoring import window_chunks

    root = tmp_path / "log"
    kept = write_log(root, wal_rows=400)  # Parquet parts over several days, plus the WAL
    start, end = START + timedelta(hours=6), START + timedelta(days=2)
    total, chunks = window_chunks(root, "churn", 1, start, end, outputs=outputs, rows=500)
    frames = list(chunks)
    reference = profile_frame(pd.concat(frames, ignore_index=True).head(800))
    by_pandas = DriftAccumulator(reference)
    for frame in frames:
        by_pandas.update(frame)
    df = spark_window(spark, root, "churn", 1, start, end, outputs=outputs)
    by_spark = spark_accumulate(reference, df)
    assert by_spark.n_rows == total < len(kept)
    assert_same_report(build_report(by_spark), build_report(by_pandas))
    with pytest.raises(NotFound, match="No logged predictions of churn v9"):
        spark_window(spark, root, "churn", 9, start, end, outputs=outputs)


def test_the_cli_runs_on_spark_and_dask_and_prints_the_pandas_scores(
    spark: SparkSession,
    dask_scheduler: str,
    mixed_frame: MakeFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from shipyard import Client, Settings
    from shipyard.cli import run_cli

    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    monkeypatch.delenv("SHIPYARD_DB_URL", raising=False)
    features = ["income", "score", "balance", "visits", "age"]
    X = mixed_frame(5000, 1)[features]
    y = (X["income"] > 50_000).astype(int)
    c = Client(Settings()).open()
    c.register(
        HistGradientBoostingClassifier(max_iter=5).fit(X, y),
        name="churn",
        X_train=X,
        y_train=y,
        onnx=False,
    )
    c.close()
    current = tmp_path / "current.parquet"
    mixed_frame(8000, 2, drift=True)[features].to_parquet(current)
    monkeypatch.setenv("SHIPYARD_DASK_SCHEDULER", dask_scheduler)
    documents = []
    for engine in ("pandas", "spark", "dask"):
        args = ["monitor", "run", "churn:1", "--current", str(current), "--engine", engine]
        assert run_cli([*args, "--json"]) == 1
        documents.append(json.loads(capsys.readouterr().out))
    by_pandas, by_spark, by_dask = documents
    for document in documents:
        document.pop("elapsed_seconds")
    assert by_spark == by_pandas and by_dask == by_pandas
    assert {f["name"] for f in by_spark["features"] if f["drifted"] or f["quality_breached"]} == {
        "income",
        "score",
        "balance",
    }
    assert spark.range(1).count() == 1  # the shared session was not stopped
    args = ["monitor", "run", "churn:1", "--engine", "spark", "--current"]
    assert run_cli([*args, str(tmp_path / "none.parquet")]) == 2
    assert "No such file" in capsys.readouterr().err
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet")
    assert run_cli([*args, str(junk)]) == 2
    err = capsys.readouterr().err
    assert "Spark cannot read" in err and "Traceback" not in err
    assert run_cli(["monitor", "run", "churn:1", "--engine", "ray", "--current", str(current)]) == 2
