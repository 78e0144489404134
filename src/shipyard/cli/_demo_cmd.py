"""``shipyard demo``."""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli._app import app, console


@app.command("demo")
def demo_cmd(
    home: Path = typer.Option(
        Path(".shipyard-demo"), help="Folder for the demo's own store (reset on every run)."
    ),
) -> None:
    """Run the whole loop on bundled data, in its own embedded store.

    Track, register, approve, promote, serve, log predictions, label them, monitor drift and
    performance, alert, retrain, validate, canary, promote or roll back, verify the audit log.
    Needs the \\[demo] extra: pip install -e ".\\[demo]".
    """
    from shipyard.demo import run_demo

    run_demo(home, console)
