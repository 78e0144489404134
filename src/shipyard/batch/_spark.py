"""``score_spark``: the same scoring as ``score_file``, on a Spark DataFrame (``mapInPandas``)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import pandas as pd

from shipyard.batch._predict import (
    ID_COLUMN,
    MODEL_COLUMN,
    PREDICTION_COLUMN,
    VERSION_COLUMN,
    check_columns,
    model_input,
    proba_columns,
    scored_columns,
)
from shipyard.batch._worker import worker_model
from shipyard.errors import MissingDependency
from shipyard.packaging import LoadedModel

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType


def score_spark(loaded: LoadedModel, df: DataFrame) -> DataFrame:
    """``df`` with the columns ``score_file`` writes, computed on the executors.

    The verified archive is broadcast once; each Python worker re-checks its members'
    checksums and loads the model once. The output schema is declared, not inferred: the
    input's fields, then ``prediction_id``, ``prediction``, ``proba_<class>``, ``model``,
    ``version``. Needs the ``spark`` extra (``pip install 'shipyard[spark]'``).

    >>> scored = score_spark(client.load("churn@production"), spark.read.parquet("in/"))
    ... # doctest: +SKIP
    """
    try:
        from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType
    except ImportError as exc:  # pragma: no cover - the tests install the extra
        raise MissingDependency(
            "The Spark engine needs pyspark: pip install 'shipyard[spark]'."
        ) from exc
    check_columns(loaded, list(df.columns), source="The Spark DataFrame")
    added = [
        StructField(ID_COLUMN, StringType(), nullable=False),
        StructField(PREDICTION_COLUMN, _prediction_type(loaded), nullable=True),
        *(StructField(name, DoubleType(), nullable=True) for name in proba_columns(loaded)),
        StructField(MODEL_COLUMN, StringType(), nullable=False),
        StructField(VERSION_COLUMN, LongType(), nullable=False),
    ]
    schema = StructType([*df.schema.fields, *added])
    shipped = df.sparkSession.sparkContext.broadcast(loaded.archive)
    return df.mapInPandas(partial(_score_partitions, shipped), schema=schema)


def _score_partitions(shipped: Any, frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Runs in a Python worker: score each Arrow batch of a partition."""
    loaded = worker_model(shipped.value)
    for frame in frames:
        X = model_input(loaded, frame, rows="Rows of a Spark partition")
        scored = pd.DataFrame(scored_columns(loaded, X), index=frame.index)
        yield pd.concat([frame, scored], axis=1)


def _prediction_type(loaded: LoadedModel) -> DataType:
    from pyspark.sql.types import BooleanType, DoubleType, LongType, StringType

    if loaded.manifest.task != "classification":
        return DoubleType()
    classes = loaded.classes or []
    if classes and all(isinstance(c, bool) for c in classes):
        return BooleanType()
    if classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return LongType()
    if classes and all(isinstance(c, float) for c in classes):
        return DoubleType()
    return StringType()
