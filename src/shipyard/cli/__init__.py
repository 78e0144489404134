"""The ``shipyard`` command line (Typer + Rich). Exit codes: 0 ok, 1 refused/failed, 2 usage."""

from __future__ import annotations

import sys

from shipyard.cli import _admin_cmds, _demo_cmd, _registry_cmds  # noqa: F401 - registers commands
from shipyard.cli._app import app, run_cli


def main() -> None:
    """Console-script entry point."""
    sys.exit(run_cli())


__all__ = ["app", "main", "run_cli"]
