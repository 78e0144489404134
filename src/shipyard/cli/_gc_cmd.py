"""``shipyard gc``: delete what is past retention and say what was freed."""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli._app import JsonOption, app, client, console, print_json
from shipyard.cli._predictions_cmds import LogDirOption, log_root
from shipyard.housekeeping import collect_garbage
from shipyard.monitoring import parse_window


@app.command("gc")
def gc_cmd(
    predictions: str = typer.Option(
        "90d",
        help="Delete prediction-log partitions older than this (e.g. 30d, 12w); 'keep' keeps them.",
    ),
    monitoring: str = typer.Option(
        "365d", help="Delete monitoring results older than this; 'keep' keeps them."
    ),
    log_dir: Path = LogDirOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be deleted."),
    as_json: bool = JsonOption,
) -> None:
    """Apply retention to the prediction log and monitoring results (audited).

    Registered model versions and their archives are never deleted here.
    """
    pred_age = None if predictions == "keep" else parse_window(predictions, option="--predictions")
    mon_age = None if monitoring == "keep" else parse_window(monitoring, option="--monitoring")
    c = client()
    report = collect_garbage(
        c.store,
        log_root=log_root(log_dir),
        predictions_older_than=pred_age,
        monitoring_older_than=mon_age,
        actor=c.user,
        dry_run=dry_run,
    )
    if as_json:
        print_json(vars(report))
        return
    verb = "Would free" if dry_run else "Freed"
    console.print(
        f"{verb} {report.bytes / 1e6:.1f} MB in {report.files} file(s) from "
        f"{len(report.partitions)} prediction-log partition(s), and "
        f"{report.monitoring_rows} monitoring result row(s)."
    )
