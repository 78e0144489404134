"""``shipyard score``: a registered model over a Parquet or CSV file (pandas or Spark)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from shipyard.cli._app import app, client, console, row_progress
from shipyard.cli._options import Engine
from shipyard.errors import InvalidInput, MissingDependency

if TYPE_CHECKING:
    from shipyard.packaging import LoadedModel


@app.command("score")
def score_cmd(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model reference: churn, churn@production, churn:3."),
    src: Path = typer.Argument(..., help="Input rows: a Parquet (.parquet) or CSV (.csv) file."),
    dst: Path = typer.Argument(
        ..., help="Output file (.parquet or .csv); with --engine spark, a folder of part files."
    ),
    engine: Engine = typer.Option(Engine.pandas, help="pandas (streaming) or spark."),
    chunk_rows: int = typer.Option(
        50_000, "--chunk-rows", min=1, help="Rows per chunk (pandas engine): bounds memory."
    ),
) -> None:
    """Score every row of SRC with MODEL into DST: the input columns plus prediction_id,
    prediction, proba_<class>, model and version."""
    loaded = client(ctx, notify=False).load(model)
    if engine is Engine.spark:
        rows = _score_with_spark(loaded, src, dst)
        console.print(f"Scored {rows:,} rows with {loaded.name} v{loaded.version} into {dst}.")
        return
    from shipyard.batch import parquet_rows, score_file

    with row_progress() as progress:
        task = progress.add_task(f"Scoring {src}", total=parquet_rows(src))
        summary = score_file(
            loaded,
            src,
            dst,
            chunk_rows=chunk_rows,
            progress=lambda n: progress.advance(task, n),
        )
    console.print(
        f"Scored {summary.rows:,} rows in {summary.chunks} chunk(s) with {loaded.name} "
        f"v{loaded.version} into {dst} ({summary.seconds:.2f} s)."
    )


def _score_with_spark(loaded: LoadedModel, src: Path, dst: Path) -> int:
    from shipyard.batch import score_spark, table_format

    fmt, out_fmt = table_format(src), table_format(dst)
    if not src.exists():
        raise InvalidInput(f"No such file: '{src}'.")
    if dst.exists():
        raise InvalidInput(f"'{dst}' already exists: Spark writes a new folder; remove it first.")
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise MissingDependency(
            "--engine spark needs pyspark: pip install 'shipyard[spark]'."
        ) from exc
    # Python workers run this same interpreter, so they can import Shipyard and the model's
    # libraries (PySpark reads PYSPARK_PYTHON, not spark.pyspark.python); a user's setting wins.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    ours = SparkSession.getActiveSession() is None  # stop only a session started here
    spark = SparkSession.builder.appName("shipyard score").getOrCreate()
    try:
        reader = spark.read.option("header", True).option("inferSchema", True)
        df = reader.parquet(str(src)) if fmt == "parquet" else reader.csv(str(src))
        writer = score_spark(loaded, df).write.mode("errorifexists").option("header", True)
        writer.format(out_fmt).save(str(dst))
        written = spark.read.option("header", True).format(out_fmt).load(str(dst))
        return int(written.count())
    finally:
        if ours:
            spark.stop()
