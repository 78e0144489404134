"""``shipyard gc``: delete what is past retention and say what was freed."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from shipyard.cli._app import JsonOption, app, client, console, err_console, print_json, project
from shipyard.cli._predictions_cmds import LogDirOption, log_root


@app.command("gc")
def gc_cmd(
    ctx: typer.Context,
    predictions: str = typer.Option(
        None,
        help="Delete prediction-log partitions older than this (e.g. 30d, 12w); 'keep' keeps "
        "them. Default: 'predictions' of the retention table in shipyard.toml, else 90d.",
    ),
    monitoring: str = typer.Option(
        None,
        help="Delete monitoring results older than this; 'keep' keeps them. Default: "
        "'monitoring' of the retention table, else 365d.",
    ),
    job_runs: str = typer.Option(
        None,
        "--job-runs",
        help="Delete scheduler job runs older than this; 'keep' keeps them. Default: "
        "'job_runs' of the retention table, else 365d.",
    ),
    archived_artifacts: bool = typer.Option(
        False,
        "--archived-artifacts",
        help="Also delete the archive files of archived versions that no alias or traffic "
        "policy uses (their registry rows stay).",
    ),
    log_dir: Path = LogDirOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be deleted."),
    as_json: bool = JsonOption,
) -> None:
    """Apply retention to the prediction log, monitoring results and job runs (audited).

    Versions an alias points to are never touched; archives go only with
    --archived-artifacts.
    """
    from shipyard.config import parse_age
    from shipyard.housekeeping import collect_garbage

    retention = project(ctx).retention
    pred_age = (
        parse_age(predictions, option="--predictions")
        if predictions is not None
        else retention.predictions
    )
    mon_age = (
        parse_age(monitoring, option="--monitoring")
        if monitoring is not None
        else retention.monitoring
    )
    runs_age = (
        parse_age(job_runs, option="--job-runs") if job_runs is not None else retention.job_runs
    )
    c = client(ctx)
    report = collect_garbage(
        c.store,
        log_root=log_root(ctx, log_dir),
        predictions_older_than=pred_age,
        monitoring_older_than=mon_age,
        job_runs_older_than=runs_age,
        archived_artifacts=archived_artifacts,
        actor=c.user,
        dry_run=dry_run,
    )
    if as_json:
        print_json(vars(report))
        return
    verb = "Would free" if dry_run else "Freed"
    console.print(
        f"{verb} {_size(report.bytes)} in {report.files} file(s) from "
        f"{len(report.partitions)} prediction-log partition(s), "
        f"{report.monitoring_rows} monitoring result row(s) and {report.job_runs} job run(s).",
        highlight=False,
    )
    if archived_artifacts:
        listed = ", ".join(report.artifacts) or "none"
        console.print(
            f"{verb} {_size(report.artifact_bytes)} of archives of archived versions: {listed}.",
            highlight=False,
        )
    if dry_run:
        console.print("Nothing was deleted (--dry-run).")
    for error in report.errors:
        err_console.print(f"[bold yellow]Warning:[/] {escape(error)}", highlight=False)


def _size(n: int) -> str:
    """``1234567`` → ``1.2 MB``; small sizes in bytes."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
