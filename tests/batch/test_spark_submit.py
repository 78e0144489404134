"""The README's ``spark-submit`` path, as written there: a one-line driver file runs
``shipyard score ... --engine spark`` as an application of the standalone cluster (a master
and two workers), and the predictions equal the pandas engine's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from shipyard import Client
from shipyard.cli import run_cli

if TYPE_CHECKING:
    from spark_cluster import SparkStandalone

pytestmark = pytest.mark.slow

#: The driver file of the README ("spark-submit runs .py files").
DRIVER = "from shipyard.cli import main; main()\n"


def test_spark_submit_scores_on_the_cluster_like_pandas(
    alice: Client, spark_cluster: SparkStandalone, tmp_path: Path, training_data: tuple
) -> None:
    import shipyard
    from spark_cluster import spark_home

    training_data[2].to_parquet(tmp_path / "in.parquet", index=False)
    (tmp_path / "shipyard_submit.py").write_text(DRIVER, encoding="utf-8")
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        # the Shipyard under test, for the driver and the executors' Python workers
        "PYTHONPATH": str(Path(shipyard.__file__).parents[1]),
        # the driver's JVM starts like the cluster's (its executors' come from the workers)
        "JAVA_TOOL_OPTIONS": spark_cluster.java_options,
    }
    submitted = subprocess.run(
        [
            str(spark_home() / "bin" / "spark-submit"),
            *("--master", spark_cluster.master_url),
            *("--executor-memory", "512m", "--conf", "spark.cores.max=1"),
            *("--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.ui.enabled=false"),
            "shipyard_submit.py",
            *("score", "churn:1", "in.parquet", "by_spark.parquet", "--engine", "spark"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert "Scored 150 rows" in submitted.stdout
    # The application ran on the cluster (the master lists it as completed), not local[*].
    apps = spark_cluster.status()["completedapps"]
    assert isinstance(apps, list) and any(a["name"] == "shipyard score" for a in apps)

    assert run_cli(["score", "churn:1", str(tmp_path / "in.parquet"), str(tmp_path / "p.csv")]) == 0
    by_spark = pd.read_parquet(tmp_path / "by_spark.parquet")
    by_pandas = pd.read_csv(tmp_path / "p.csv")
    columns = ["prediction", "proba_churn", "proba_stay"]
    order = ["age", "income", "tenure"]
    left = by_spark.sort_values(order).reset_index(drop=True)[columns]
    right = by_pandas.sort_values(order).reset_index(drop=True)[columns]
    pd.testing.assert_frame_equal(left, right, check_dtype=False, atol=1e-9, rtol=0)
