"""The server, the pandas batch engine and the Spark engine give identical predictions for
the same rows (issue #3: "Server, pandas and Spark paths give identical predictions")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from serving.conftest import http
from shipyard import Client
from shipyard.batch import score_file, score_spark
from shipyard.serving import create_app
from shipyard.settings import ServeSettings

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

TrainingData = tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_server_pandas_and_spark_agree_row_for_row(
    spark: SparkSession, alice: Client, training_data: TrainingData, tmp_path: Path
) -> None:
    _, _, X_eval, _ = training_data
    rows = X_eval.reset_index(drop=True)
    loaded = alice.load("churn:1")
    proba_columns = [f"proba_{c}" for c in loaded.classes or []]
    assert proba_columns, "the test needs a classifier"

    # 1. the REST server (native runtime, no log), one request with every row
    settings = ServeSettings(auth=False, runtime="native", models=("churn",))
    async with http(create_app(alice.store, settings=settings)) as client:
        answer = await client.post(
            "/models/churn/versions/1/predict", json={"records": rows.to_dict("records")}
        )
    assert answer.status_code == 200, answer.text
    served = answer.json()
    assert served["classes"] == loaded.classes

    # 2. the pandas batch engine, in small chunks
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    rows.assign(row_id=np.arange(len(rows))).to_parquet(src, index=False)
    score_file(loaded, src, dst, chunk_rows=40)
    by_pandas = pd.read_parquet(dst).sort_values("row_id", ignore_index=True)

    # 3. Spark (mapInPandas), rows back in their order by row_id
    scored = score_spark(loaded, spark.read.parquet(str(src)))
    by_spark = pd.DataFrame([r.asDict() for r in scored.collect()], columns=scored.columns)
    by_spark = by_spark.sort_values("row_id", ignore_index=True)

    assert served["predictions"] == by_pandas["prediction"].tolist()
    assert by_spark["prediction"].tolist() == by_pandas["prediction"].tolist()
    np.testing.assert_array_equal(
        np.asarray(served["probabilities"], dtype=float), by_pandas[proba_columns].to_numpy()
    )
    np.testing.assert_array_equal(
        by_spark[proba_columns].to_numpy(), by_pandas[proba_columns].to_numpy()
    )
    # and all three equal the model called in process
    np.testing.assert_array_equal(loaded.predict(rows), by_pandas["prediction"].to_numpy())
    in_process = loaded.predict_proba(rows)
    assert in_process is not None
    np.testing.assert_array_equal(in_process, by_pandas[proba_columns].to_numpy())
