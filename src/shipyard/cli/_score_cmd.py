"""``shipyard score``: a registered model over a Parquet or CSV file (pandas, Spark or Dask)."""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli._app import app, client, console, settings
from shipyard.cli._monitor_cmds import DaskSchedulerOption, progress_bar
from shipyard.cli._options import Engine


@app.command("score")
def score_cmd(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model reference: churn, churn@production, churn:3."),
    src: Path = typer.Argument(..., help="Input rows: a Parquet (.parquet) or CSV (.csv) file."),
    dst: Path = typer.Argument(
        ...,
        help="Output file (.parquet or .csv); with --engine spark or dask, a new folder of "
        "part files.",
    ),
    engine: Engine = typer.Option(
        Engine.pandas,
        help="pandas (streaming, this process), spark (the Spark session's cluster: see "
        "spark-submit) or dask (a local Dask cluster, or --dask-scheduler).",
    ),
    chunk_rows: int = typer.Option(
        50_000, "--chunk-rows", min=1, help="Rows per chunk (pandas engine): bounds memory."
    ),
    dask_scheduler: str = DaskSchedulerOption,
) -> None:
    """Score every row of SRC with MODEL into DST: the input columns plus prediction_id,
    prediction, proba_<class>, model and version."""
    from shipyard.engines import engine_for

    runner = engine_for(
        engine.value,
        dask_scheduler=dask_scheduler or settings(ctx).dask_scheduler,
        chunk_rows=chunk_rows,
    )
    loaded = client(ctx, notify=False).load(model)
    summary = runner.score(loaded, src, dst, progress=progress_bar(quiet=False))
    where = f"{summary.chunks} chunk(s)" if engine is Engine.pandas else f"{summary.chunks} part(s)"
    console.print(
        f"Scored {summary.rows:,} rows in {where} with {loaded.name} v{loaded.version} into "
        f"{dst} ({summary.seconds:.2f} s, {engine.value})."
    )
