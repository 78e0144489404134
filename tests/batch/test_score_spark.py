"""``score_spark`` in Spark local mode gives the pandas engine's predictions, row for row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from shipyard import Client
from shipyard.batch import output_columns, score_file, score_spark
from shipyard.cli import run_cli
from shipyard.errors import InvalidInput

# PySpark 4.x warns on every pandas conversion that it "does not yet fully support pandas >=
# 3.0.0"; the equality test below is what tells whether this path works, so only that warning
# is ignored.
pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)

TrainingData = tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]


def test_spark_scores_like_pandas(
    spark: SparkSession, alice: Client, training_data: TrainingData, tmp_path: Path
) -> None:
    _, _, X_eval, _ = training_data
    loaded = alice.load("churn:1")
    rows = X_eval.reset_index(drop=True).assign(row_id=np.arange(len(X_eval)))
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    rows.to_parquet(src, index=False)
    score_file(loaded, src, dst, chunk_rows=50)
    by_pandas = pd.read_parquet(dst).sort_values("row_id", ignore_index=True)

    scored = score_spark(loaded, spark.read.parquet(str(src)))
    assert scored.columns == [*rows.columns, *output_columns(loaded)]
    # collect(), not toPandas(): PySpark's Arrow conversion passes pandas 3 a deprecated keyword.
    by_spark = pd.DataFrame([r.asDict() for r in scored.collect()], columns=scored.columns)
    by_spark = by_spark.sort_values("row_id", ignore_index=True)

    assert by_spark["row_id"].tolist() == by_pandas["row_id"].tolist()
    assert by_spark["prediction"].tolist() == by_pandas["prediction"].tolist()
    np.testing.assert_array_equal(
        by_spark[["proba_churn", "proba_stay"]].to_numpy(),
        by_pandas[["proba_churn", "proba_stay"]].to_numpy(),
    )
    assert by_spark["prediction_id"].str.len().eq(32).all() and by_spark["prediction_id"].is_unique
    assert set(by_spark["model"]) == {"churn"} and set(by_spark["version"]) == {1}

    with pytest.raises(InvalidInput, match=r"lacks the column.*'plan'"):
        score_spark(loaded, spark.read.parquet(str(src)).drop("plan"))


def test_the_cli_scores_with_spark(
    spark: SparkSession, alice: Client, training_data: TrainingData, tmp_path: Path
) -> None:
    _, _, X_eval, _ = training_data
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    X_eval.to_parquet(src, index=False)

    assert run_cli(["score", "churn:1", str(src), str(dst), "--engine", "spark"]) == 0
    assert len(pd.read_parquet(dst)) == len(X_eval)  # a folder of part files
    assert spark.range(1).count() == 1  # the shared session was not stopped
