"""``shipyard predictions query`` and ``shipyard feedback``: the prediction log from the shell."""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli._app import JsonOption, app, client, console, print_json, settings, table
from shipyard.cli._io import read_table

predictions_app = typer.Typer(
    help="The prediction log (Parquet, queried with DuckDB).", no_args_is_help=True
)
app.add_typer(predictions_app, name="predictions")

LogDirOption = typer.Option(
    None, "--log-dir", help="Prediction log folder (default: predictions/ in SHIPYARD_HOME)."
)


def log_root(ctx: typer.Context, log_dir: Path | None) -> Path:
    """The prediction log folder ``shipyard serve`` writes by default."""
    return log_dir or settings(ctx).home.expanduser().absolute() / "predictions"


@predictions_app.command("query")
def predictions_query_cmd(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model name."),
    sql: str = typer.Option(
        "SELECT * FROM predictions ORDER BY ts DESC LIMIT 20",
        "--sql",
        help="DuckDB SQL over the views 'predictions' and 'feedback'.",
    ),
    log_dir: Path = LogDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Run SQL over a model's logged predictions and labels."""
    from shipyard.predlog import query

    frame = query(log_root(ctx, log_dir), sql, model=model)
    if as_json:
        print_json(frame.to_dict(orient="records"))
        return
    table(
        f"{model}: {len(frame)} row(s)",
        [str(c) for c in frame.columns],
        frame.itertuples(index=False),
    )


@app.command("feedback")
def feedback_cmd(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model name."),
    labels: Path = typer.Argument(..., help="Parquet or CSV with prediction_id and label."),
    log_dir: Path = LogDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Record ground-truth labels; they join to predictions by prediction_id."""
    from shipyard.predlog import PredictionLog

    client(ctx, notify=False).registry.get_model(model)
    log = PredictionLog(log_root(ctx, log_dir)).open()
    try:
        result = log.record_feedback_frame(model, read_table(labels))
    finally:
        log.close()
    if as_json:
        print_json(
            {
                "matched": result.matched,
                "unknown": result.unknown,
                "unknown_ids": result.unknown_ids,
            }
        )
    else:
        console.print(f"Recorded {result.matched} label(s) for {model}.")
        if result.unknown:
            console.print(
                f"[yellow]{result.unknown} label(s) name unknown prediction ids[/] "
                f"(not stored), e.g. {', '.join(result.unknown_ids[:5])}."
            )
    if result.unknown:
        raise typer.Exit(1)
