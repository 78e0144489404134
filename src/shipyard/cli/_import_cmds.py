"""``shipyard import mlflow``: bring models made with MLflow into the registry."""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli._app import JsonOption, app, client, console, print_json, table
from shipyard.cli._io import read_table

import_app = typer.Typer(
    no_args_is_help=True,
    help="Import models made elsewhere (MLflow) as registry versions.",
)
app.add_typer(import_app, name="import")


@import_app.command("mlflow")
def import_mlflow_cmd(
    ctx: typer.Context,
    source: str = typer.Argument(
        ...,
        help="An MLflow model directory, runs:/RUN_ID/PATH, models:/NAME/VERSION, "
        "models:/NAME@ALIAS or models:/NAME (every version).",
    ),
    name: str = typer.Option(
        None, "--name", help="Shipyard model name (default: the registered model's)."
    ),
    tracking_uri: str = typer.Option(
        None,
        "--tracking-uri",
        envvar="MLFLOW_TRACKING_URI",
        help="MLflow tracking server (http://...) or store (sqlite:///mlflow.db, a folder).",
    ),
    sample: Path = typer.Option(
        None,
        "--sample",
        help="Rows like the training data (Parquet or CSV) for the schema and reference "
        "profile; default: the model's input example.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Import an MLflow model with its signature, requirements, run params and metrics, and
    for a registered model every version with its aliases (production only after approval)."""
    from shipyard.importing import import_mlflow

    frame = read_table(sample) if sample is not None else None
    c = client(ctx)
    report = import_mlflow(
        source,
        registry=c.registry,
        tracker=c.tracker,
        user=c.user,
        name=name,
        tracking_uri=tracking_uri,
        sample=frame,
        sample_label=f"--sample {sample}",
    )
    if as_json:
        print_json(
            {
                "name": report.name,
                "versions": [v.__dict__ for v in report.versions],
                "aliases_set": report.aliases_set,
                "aliases_pending": report.aliases_pending,
                "notes": report.notes,
            }
        )
        return
    table(
        f"Imported into {report.name}",
        ["MLflow", "version", "status", "flavor", "reference data"],
        [
            (
                v.source,
                v.version,
                "already imported: skipped" if v.skipped else "registered",
                v.flavor,
                v.profile_from,
            )
            for v in report.versions
        ],
    )
    for alias, version in report.aliases_set.items():
        console.print(f"Alias {alias} -> {report.name} v{version} (as in MLflow).")
    for alias, version in report.aliases_pending.items():
        console.print(
            f"MLflow's {alias} alias is on v{version}: it needs a second person's approval "
            f"here (shipyard approve {report.name} {version} --reason ...; shipyard promote "
            f"{report.name} {version})."
        )
    for note in report.notes:
        console.print(note)
