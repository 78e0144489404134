"""``shipyard usage``: requests, rows and model compute time per team, token or model, from
the prediction log (chargeback)."""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli._app import JsonOption, app, print_json, table
from shipyard.cli._options import parse_time
from shipyard.cli._predictions_cmds import LogDirOption, log_root
from shipyard.errors import InvalidInput


@app.command("usage")
def usage_cmd(
    ctx: typer.Context,
    since: str = typer.Option(
        None, "--since", help="From this UTC time (2026-12-01T00:00) or span ago (7d, 24h)."
    ),
    until: str = typer.Option(None, "--until", help="Up to this UTC time or span ago."),
    by: str = typer.Option("team", "--by", help="Group by team, token or model."),
    log_dir: Path = LogDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Requests, rows, model compute seconds and refusals per team, token or model.

    Read from the prediction log, so nothing a server answered is missing, even from a
    server that was killed. A token's team is set with 'shipyard tokens create --team'.
    """
    from shipyard.predlog import USAGE_BY, usage

    if by not in USAGE_BY:
        raise InvalidInput(f"--by must be one of: {', '.join(USAGE_BY)}. Got '{by[:40]}'.")
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    frame = usage(log_root(ctx, log_dir), since=start, until=end, by=by)
    if as_json:
        print_json(frame.to_dict(orient="records"))
        return
    span = f"since {start:%Y-%m-%d %H:%M} UTC" if start else "all time"
    if end:
        span += f", until {end:%Y-%m-%d %H:%M} UTC"
    table(
        f"Usage by {by} ({span})",
        [str(c).replace("_", " ") for c in frame.columns],
        frame.itertuples(index=False),
    )
