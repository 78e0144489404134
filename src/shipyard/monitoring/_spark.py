"""``--engine spark``: the drift accumulator's counts, computed by Spark aggregations.

The result is a ``DriftAccumulator`` whose states hold exactly the integers the pandas engine
counts, so ``build_report`` scores it with the same code and every score agrees. Two Spark
jobs, and only counts come back to the driver, never rows:

1. one aggregation row: the row count and, per column, missing (None/NaN), +inf, -inf and
   (for an integer schema type) non-integral values;
2. value counts: every row becomes one ``(column, code)`` pair per column, grouped and counted.
   A numeric column's code is its counter on the grid of ``NumericState`` (a ``Bucketizer``
   whose splits are the grid points and the doubles just above them, so a value equal to a
   grid point has its own bucket); a categorical column's code is its text key. Per column at
   most ``2 * len(grid) + 1`` numeric counters come back, or the reference categories plus the
   ``MAX_UNSEEN`` most frequent unseen values (and the unseen total).

Columns whose Spark type does not carry the pandas engine's reading rules (text or decimals in
a numeric column, floats or dates as categories, a boolean or datetime schema type on text)
are counted in each partition by the pandas engine's own state code (``mapInPandas``) and
merged: still counts only.

``spark_accumulate`` is the one entry: a Spark DataFrame, a file Spark reads, or a logged
window.

>>> acc = spark_accumulate(reference, spark.read.parquet("current/"))  # doctest: +SKIP
>>> build_report(acc).flagged()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shipyard.dataset import CategoricalProfile, ColumnType, NumericProfile, Profile, Schema
from shipyard.errors import InvalidInput, MissingDependency, NotFound
from shipyard.monitoring._accumulate import DriftAccumulator, Progress
from shipyard.monitoring._state import (
    MAX_UNSEEN,
    CategoricalState,
    ColumnState,
    NumericState,
    numeric_grid,
)

if TYPE_CHECKING:
    from pyspark.ml.feature import Bucketizer
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType

_INTEGRAL = ("ByteType", "ShortType", "IntegerType", "LongType")
_FLOATING = ("FloatType", "DoubleType")


def grid_splits(grid: np.ndarray) -> tuple[list[float], list[int]]:
    """Bucketizer splits for a numeric grid, and the state counter of each bucket.

    Buckets are ``[s_k, s_k+1)``: below the first point, each point alone (from it to the next
    double up), and the open interval up to the next point (left out when empty).

    >>> splits, counters = grid_splits(np.array([1.0, 2.0]))
    >>> splits[1:-1] == [1.0, np.nextafter(1.0, 2.0), 2.0, np.nextafter(2.0, 3.0)], counters
    (True, [0, 1, 2, 3, 4])
    """
    splits, counters = [-np.inf], [0]
    for i, point in enumerate(grid.tolist()):
        splits.append(point)
        counters.append(2 * i + 1)
        up = float(np.nextafter(point, np.inf))
        following = float(grid[i + 1]) if i + 1 < len(grid) else np.inf
        if up < following:
            splits.append(up)
            counters.append(2 * i + 2)
    splits.append(np.inf)
    return splits, counters


def spark_accumulate(
    reference: Profile,
    current: DataFrame | Path | None = None,
    *,
    window: tuple[Path, str, int, datetime, datetime, bool] | None = None,
    schema: Schema | None = None,
    progress: Progress | None = None,
    master: str | None = None,
) -> DriftAccumulator:
    """Count the current window against ``reference`` by Spark aggregations, as
    ``DriftAccumulator(reference, schema=schema).update(...)`` does on the same rows.

    ``current`` is a Spark DataFrame, or a Parquet file or folder or a CSV file that Spark
    reads; ``window`` instead is a logged window ``(log root, model, version, start, end,
    outputs)`` (the model's inputs, or with ``outputs`` its outputs). A path or a window is
    read in the active Spark session, or in a new one stopped afterwards (on ``master`` when
    given, else where ``spark-submit`` or ``spark-defaults.conf`` say: ``local[*]`` by default).
    ``progress("Spark aggregations", jobs)`` is entered around the (at most three) Spark jobs
    and its value called with 1 after each. A Spark error on bad data is ``InvalidInput``.
    """
    if (current is None) == (window is None):
        raise InvalidInput("spark_accumulate counts either current or a logged window.")
    if current is not None and not isinstance(current, str | Path):
        return _counted(reference, current, schema, progress)
    with spark_session(master=master) as spark:
        if current is not None:
            df = read_spark_table(spark, Path(current))
        else:
            assert window is not None
            root, model, version, start, end, outputs = window
            df = spark_window(spark, root, model, version, start, end, outputs=outputs)
        return _counted(reference, df, schema, progress)


def _counted(
    reference: Profile, df: DataFrame, schema: Schema | None, progress: Progress | None
) -> DriftAccumulator:
    """``_accumulate`` inside the progress display, with Spark's errors as ``InvalidInput``."""
    display = progress or _no_progress
    try:
        with display("Spark aggregations", spark_jobs(reference, df, schema)) as advance:
            return _accumulate(reference, df, schema=schema, on_job=lambda: advance(1))
    except spark_errors() as exc:
        raise InvalidInput(f"Spark could not read the data: {spark_message(exc)}") from exc


@contextmanager
def _no_progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    yield lambda n: None


def _accumulate(
    reference: Profile,
    df: DataFrame,
    *,
    schema: Schema | None = None,
    on_job: Callable[[], None] | None = None,
) -> DriftAccumulator:
    """The counts of ``df``; ``on_job`` is called after each Spark job."""
    accumulator = DriftAccumulator(reference, schema=schema)
    dtypes = {c.name: c.dtype for c in schema.columns} if schema is not None else {}
    spark_types = {field.name: field.dataType for field in df.schema.fields}
    accumulator.unexpected_columns = [c for c in df.columns if c not in reference.columns]
    native: list[str] = []
    fallback: list[str] = []
    for name, column in reference.columns.items():
        if name in spark_types:
            native_ok = _is_native(column, spark_types[name], dtypes.get(name))
            (native if native_ok else fallback).append(name)

    totals = _first_pass(df, reference, native, dtypes)
    _tick(on_job)
    n_rows = int(totals["rows"])
    accumulator.n_rows = n_rows
    states = accumulator.states
    for name, state in states.items():
        if name not in spark_types:
            state.add_absent(n_rows)
    for i, name in enumerate(native):
        state = states[name]
        state.rows = n_rows
        state.missing = int(totals[f"m{i}"] or 0)
        if isinstance(state, NumericState):
            state.nan = state.missing  # as pandas reads them: every gap of a number is NaN
            state.posinf = int(totals[f"p{i}"] or 0)
            state.neginf = int(totals[f"n{i}"] or 0)
            state.violations = int(totals.get(f"f{i}") or 0)
    if native and n_rows:
        _count_values(df, reference, native, states)
        _tick(on_job)
    if fallback:
        for name, state in _fallback_states(df, reference, fallback, dtypes).items():
            states[name].merge(state)  # type: ignore[arg-type]
        _tick(on_job)
    return accumulator


def spark_jobs(reference: Profile, df: DataFrame, schema: Schema | None = None) -> int:
    """How many Spark jobs ``_accumulate`` runs on ``df`` (the progress bar's total)."""
    dtypes = {c.name: c.dtype for c in schema.columns} if schema is not None else {}
    types = {field.name: field.dataType for field in df.schema.fields}
    kinds = [
        _is_native(column, types[name], dtypes.get(name))
        for name, column in reference.columns.items()
        if name in types
    ]
    return 1 + any(kinds) + (not all(kinds))


def _tick(on_job: Callable[[], None] | None) -> None:
    if on_job is not None:
        on_job()


def _is_native(
    column: NumericProfile | CategoricalProfile, spark_type: DataType, dtype: ColumnType | None
) -> bool:
    """Whether Spark counts the column itself, or the pandas reading rules must run."""
    kind = type(spark_type).__name__
    if isinstance(column, NumericProfile):
        return kind in _INTEGRAL or kind in _FLOATING
    if dtype in ("boolean", "datetime") and kind != "BooleanType":
        return False  # text that the schema's parser reads as booleans or dates
    # Floats, decimals and dates have pandas-specific key texts: the pandas rules count them.
    return kind in ("StringType", "BooleanType") or kind in _INTEGRAL


def _col(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _first_pass(
    df: DataFrame, reference: Profile, native: list[str], dtypes: dict[str, ColumnType]
) -> dict[str, Any]:
    """Rows, and per native column (by position ``i``): missing ``m{i}``, and for numeric
    ones +inf ``p{i}``, -inf ``n{i}`` and non-integral values ``f{i}`` (integer schema type)."""
    from pyspark.sql import functions as F

    def count_if(condition: Column) -> Column:
        return F.sum(F.coalesce(condition, F.lit(False)).cast("long"))

    inf = F.lit(float("inf"))
    exprs = [F.count(F.lit(1)).alias("rows")]
    for i, name in enumerate(native):
        if isinstance(reference.columns[name], NumericProfile):
            v = _col(name).cast("double")
            exprs += [
                count_if(v.isNull() | F.isnan(v)).alias(f"m{i}"),
                count_if(v == inf).alias(f"p{i}"),
                count_if(v == -inf).alias(f"n{i}"),
            ]
            if dtypes.get(name) == "integer":
                finite = ~F.isnan(v) & (F.abs(v) != inf)
                exprs.append(count_if(finite & (v != F.rint(v))).alias(f"f{i}"))
        else:
            exprs.append(count_if(_col(name).isNull()).alias(f"m{i}"))
    totals: dict[str, Any] = df.agg(*exprs).collect()[0].asDict()
    return totals


def _category_key(name: str, spark_type: DataType) -> Column:
    """The text key the profile writes for a value (``text_of``): ``True``, ``3``, ``abc``."""
    from pyspark.sql import functions as F

    kind = type(spark_type).__name__
    column = _col(name)
    if kind == "BooleanType":
        return F.when(column, F.lit("True")).when(~column, F.lit("False"))
    return column.cast("string")


def _count_values(
    df: DataFrame, reference: Profile, native: list[str], states: dict[str, ColumnState]
) -> None:
    """One grouped count of (column, numeric counter or category key) pairs, into states."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    types = {field.name: field.dataType for field in df.schema.fields}
    inf = F.lit(float("inf"))
    prepared: list[Column] = []
    bucketed: list[tuple[str, str, list[float]]] = []  # (input, output, splits)
    counters: dict[int, np.ndarray] = {}
    pairs: list[Column] = []
    for i, name in enumerate(native):
        if isinstance(reference.columns[name], NumericProfile):
            v = _col(name).cast("double")
            finite = F.when(~F.isnan(v) & (F.abs(v) != inf), v)
            grid = numeric_grid(reference.columns[name])  # type: ignore[arg-type]
            if len(grid):
                splits, mapping = grid_splits(grid)
                counters[i] = np.asarray(mapping, dtype=np.int64)
                prepared.append(finite.alias(f"v{i}"))
                bucketed.append((f"v{i}", f"b{i}", splits))
                code = F.col(f"b{i}").cast("int")
            else:  # no finite reference value: every finite value is "above"
                counters[i] = np.zeros(1, dtype=np.int64)
                prepared.append(F.when(finite.isNotNull(), F.lit(0)).alias(f"b{i}"))
                code = F.col(f"b{i}")
            pairs.append(
                F.struct(
                    F.lit(i).alias("c"), code.alias("b"), F.lit(None).cast("string").alias("k")
                )
            )
        else:
            prepared.append(_category_key(name, types[name]).alias(f"k{i}"))
            pairs.append(
                F.struct(
                    F.lit(i).alias("c"),
                    F.lit(None).cast("int").alias("b"),
                    F.col(f"k{i}").alias("k"),
                )
            )
    frame = df.select(*prepared)
    if bucketed:
        frame = _bucketizer(bucketed).transform(frame)
    spark = df.sparkSession
    known_rows = [
        (i, key)
        for i, name in enumerate(native)
        if isinstance(state := states[name], CategoricalState)
        for key in state.categories
    ]
    known = spark.createDataFrame(known_rows or [(-1, "")], "c int, k string").withColumn(
        "known", F.lit(True)
    )
    grouped = (
        frame.select(F.explode(F.array(*pairs)).alias("p"))
        .select("p.c", "p.b", "p.k")
        .where(F.col("b").isNotNull() | F.col("k").isNotNull())
        .groupBy("c", "b", "k")
        .count()
        .join(F.broadcast(known), ["c", "k"], "left")
        .withColumn("known", F.coalesce(F.col("known"), F.lit(False)))
    )
    by_bucket = Window.partitionBy("c", "known")
    ranked = grouped.withColumn(
        "rank", F.row_number().over(by_bucket.orderBy(F.desc("count"), F.asc("k")))
    ).withColumn("total", F.sum("count").over(by_bucket))
    rows = ranked.where(
        F.col("b").isNotNull() | F.col("known") | (F.col("rank") <= MAX_UNSEEN)
    ).collect()
    for row in sorted(rows, key=lambda r: (r["c"], r["rank"])):
        state = states[native[row["c"]]]
        if isinstance(state, NumericState):
            state.counts[counters[row["c"]][row["b"]]] += row["count"]
        elif row["known"]:
            state.counts[state.categories.index(row["k"])] += row["count"]
        else:
            state.unseen_total = int(row["total"])
            state.unseen[row["k"]] = int(row["count"])


def _bucketizer(bucketed: list[tuple[str, str, list[float]]]) -> Bucketizer:
    """A ``Bucketizer`` of ``(input, output, splits)`` columns, invalid values kept.

    The splits go to the JVM as one JSON text (Spark's own encoding of the parameter, exact
    for every double): handed over as Python lists, py4j would send each double in a call of
    its own, ~2,000 per numeric column (seconds of driver time for a few columns)."""
    from pyspark.ml.feature import Bucketizer

    bucketizer = Bucketizer(
        inputCols=[a for a, _, _ in bucketed],
        outputCols=[b for _, b, _ in bucketed],
        handleInvalid="keep",
    )
    java = bucketizer._java_obj  # set on the Java side; transform() passes only Python's params
    assert java is not None
    param = java.splitsArray()
    text = json.dumps([[_json_double(x) for x in splits] for _, _, splits in bucketed])
    java.set(param.w(param.jsonDecode(text)))
    return bucketizer


def _json_double(x: float) -> float | str:
    """A double as Spark's JSON params write it: ``"Inf"``, ``"-Inf"``, ``"NaN"`` as text.

    >>> [_json_double(x) for x in (1.5, float("inf"), -float("inf"))]
    [1.5, 'Inf', '-Inf']
    """
    if np.isnan(x):
        return "NaN"
    return x if np.isfinite(x) else ("Inf" if x > 0 else "-Inf")


def _fallback_states(
    df: DataFrame, reference: Profile, names: list[str], dtypes: dict[str, ColumnType]
) -> dict[str, ColumnState]:
    """States of ``names`` counted by the pandas engine in each partition, then merged."""
    columns = {name: reference.columns[name] for name in names}
    count = partial(_count_partition, columns, {n: dtypes.get(n) for n in names})
    parts = df.select(*[_col(n) for n in names]).mapInPandas(
        count, schema="name string, state binary"
    )
    merged: dict[str, ColumnState] = {}
    for row in parts.collect():
        state = pickle.loads(row["state"])  # our own executors' payload
        if row["name"] in merged:
            merged[row["name"]].merge(state)
        else:
            merged[row["name"]] = state
    return merged


def _count_partition(
    columns: dict[str, NumericProfile | CategoricalProfile],
    dtypes: dict[str, ColumnType | None],
    frames: Iterator[pd.DataFrame],
) -> Iterator[pd.DataFrame]:
    """Runs in a Python worker: the pandas engine's states of one partition."""
    states: dict[str, ColumnState] = {
        name: CategoricalState.empty(column)
        if isinstance(column, CategoricalProfile)
        else NumericState.empty(column)
        for name, column in columns.items()
    }
    for frame in frames:
        for name, state in states.items():
            state.update(frame[name], dtypes[name])
    yield pd.DataFrame({"name": list(states), "state": [pickle.dumps(s) for s in states.values()]})


def spark_errors() -> tuple[type[Exception], ...]:
    """The exceptions a Spark job raises on bad input (Python-side and JVM-side)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    return (PySparkException, Py4JJavaError)


def spark_message(exc: Exception) -> str:
    """The first line of a Spark error, without the JVM stack trace."""
    java = getattr(exc, "java_exception", None)
    text = str(java.getMessage()) if java is not None else str(exc)
    return (text.strip().splitlines() or [type(exc).__name__])[0]


# -- sources ------------------------------------------------------------------------------------


@contextmanager
def spark_session(
    app_name: str = "shipyard monitor", *, master: str | None = None
) -> Iterator[SparkSession]:
    """The active Spark session, or a new one (on ``master`` when given) stopped on exit.
    Python workers run this interpreter (PySpark reads PYSPARK_PYTHON only); a user's
    setting wins."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise MissingDependency(
            "--engine spark needs pyspark: pip install 'shipyard[spark]'."
        ) from exc
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    ours = SparkSession.getActiveSession() is None
    builder = SparkSession.builder.appName(app_name)
    if master is not None and ours:
        builder = builder.master(master)
    spark = builder.getOrCreate()
    try:
        yield spark
    finally:
        if ours:
            spark.stop()


def read_spark_table(spark: SparkSession, path: Path) -> DataFrame:
    """A Parquet file or folder, or a CSV file (header, inferred types), as a DataFrame."""
    if not path.exists():
        raise InvalidInput(f"No such file: '{path}'.")
    suffix = path.suffix.lower()
    reader = spark.read
    try:
        if suffix in (".parquet", ".pq") or path.is_dir():
            return reader.parquet(str(path))
        if suffix in (".csv", ".txt"):
            df = reader.option("header", True).option("inferSchema", True).csv(str(path))
            return _pandas_na(df)
    except spark_errors() as exc:
        raise InvalidInput(f"Spark cannot read '{path}': {spark_message(exc)}") from exc
    raise InvalidInput(f"'{path}' is neither Parquet (.parquet) nor CSV (.csv).")


#: The cells pandas.read_csv reads as missing by default (Spark knows only the empty one).
PANDAS_NA = (
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)


def _pandas_na(df: DataFrame) -> DataFrame:
    """Text columns with pandas' missing-value cells as nulls, as the pandas engine reads CSV.
    (Type inference still differs on malformed cells: for identical results use Parquet.)"""
    from pyspark.sql import functions as F

    text = {f.name for f in df.schema.fields if type(f.dataType).__name__ == "StringType"}
    if not text:
        return df
    return df.select(
        *[
            F.when(~_col(c).isin(*PANDAS_NA), _col(c)).alias(c) if c in text else _col(c)
            for c in df.columns
        ]
    )


def spark_window(
    spark: SparkSession,
    root: Path,
    model: str,
    version: int,
    start: datetime,
    end: datetime,
    *,
    outputs: bool,
) -> DataFrame:
    """The logged, accepted predictions of one version in ``[start, end)`` as a Spark
    DataFrame of inputs or outputs, like ``logged_window``: Spark reads the Parquet parts of
    the days in the window; records still in the write-ahead log are added from the driver."""
    from pyspark.sql import functions as F

    from shipyard.monitoring._window import window_view
    from shipyard.predlog import read_window

    window = read_window(root, model, version=int(version), start=start, end=end)
    parts, wal = window.day_parts(), window.wal
    frames: list[DataFrame] = []
    if parts:
        base = str(window.base)
        frames.append(
            spark.read.option("basePath", base).option("mergeSchema", True).parquet(*parts)
        )
    if wal is not None and wal.num_rows:
        frames.append(spark.createDataFrame(wal.drop_columns(["model", "date"])))
    if not frames:
        raise _empty_window(model, version, start, end)
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other, allowMissingColumns=True)
    ts = F.col("ts").cast("double")
    df = df.where(
        (F.col("version") == F.lit(int(version)))
        & (F.col("status") == F.lit("ok"))
        & (ts >= F.lit(start.timestamp()))
        & (ts < F.lit(end.timestamp()))
    )
    columns = window_view(df.columns, outputs=outputs)
    selected = [
        (_col(source).cast("string") if target == "prediction" else _col(source)).alias(target)
        for source, target in columns
    ]
    return df.select(*selected)


def _empty_window(model: str, version: int, start: datetime, end: datetime) -> NotFound:
    return NotFound(
        f"No logged predictions of {model} v{version} between {start:%Y-%m-%d %H:%M} and "
        f"{end:%Y-%m-%d %H:%M} UTC: nothing to monitor. Widen --window or check --log-dir."
    )
