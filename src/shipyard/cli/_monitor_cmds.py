"""``shipyard monitor``: drift and data quality of a batch against a version's reference."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from shipyard.cli._app import JsonOption, app, client, console, print_json, table
from shipyard.cli._io import iter_table_chunks
from shipyard.dataset import Schema
from shipyard.errors import InvalidInput
from shipyard.monitoring import DriftReport, compute_drift

monitor_app = typer.Typer(
    help="Input drift and data quality against the training data.", no_args_is_help=True
)
app.add_typer(monitor_app, name="monitor")


@monitor_app.command("run")
def monitor_run_cmd(
    model: str = typer.Argument(..., help="Model reference: churn, churn@staging, churn:3."),
    current: Path = typer.Option(
        ..., "--current", help="The batch to check (Parquet or CSV), e.g. before scoring it."
    ),
    outputs: bool = typer.Option(
        False,
        "--outputs",
        help="Check prediction drift: the file holds the model's outputs "
        "(prediction, proba_<class>) instead of its inputs.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Compare a batch with the version's reference profile; exit 1 on drift or a quality
    breach (so cron and CI can act on it)."""
    loaded = client().load(model)
    reference = loaded.reference_profile["outputs" if outputs else "inputs"]
    schema = None if outputs else Schema.model_validate(loaded.manifest.input_schema)
    total, chunks = iter_table_chunks(current)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as progress:
        task = progress.add_task(f"Checking {current.name}", total=total)

        def counted() -> Iterator[Any]:
            for chunk in chunks:
                yield chunk
                progress.advance(task, len(chunk))

        report = compute_drift(reference, counted(), schema=schema)
    if report.n_rows == 0:
        raise InvalidInput(f"'{current}' has no rows: there is nothing to compare.")
    if as_json:
        print_json(
            {"model": loaded.name, "version": loaded.version, **report.model_dump(mode="json")}
        )
    else:
        _print_report(report, f"{loaded.name} v{loaded.version}")
    if report.drifted or report.flagged():
        raise typer.Exit(1)


def _print_report(report: DriftReport, label: str) -> None:
    rows = []
    for f in sorted(report.features, key=lambda f: not (f.drifted or f.quality_breached)):
        deciding = next((s for s in f.scores if s.name == f.test), None)
        breaches = [q.name for q in f.quality if q.breached]
        rows.append(
            (
                f.name,
                f.kind,
                f.test or "-",
                f"{deciding.value:.4g}" if deciding else "",
                f"{deciding.threshold:.4g}" if deciding else "",
                "[red]drift[/]" if f.drifted else "[green]ok[/]",
                ", ".join(breaches) or "ok",
            )
        )
    table(
        f"Drift of {label}: {report.n_rows:,} rows vs {report.n_reference_rows:,} reference",
        ["feature", "type", "test", "score", "threshold", "drift", "quality"],
        rows,
    )
    flagged = report.flagged()
    verdict = (
        f"[red]{len(flagged)} feature(s) flagged: {', '.join(flagged)}[/]"
        if flagged
        else "[green]No drift and no data-quality breach.[/]"
    )
    console.print(f"{verdict} ({report.elapsed_seconds:.2f} s)")
