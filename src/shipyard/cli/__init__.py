"""The ``shipyard`` command line (Typer + Rich).

Exit codes (``run_cli``): 0 ok; 1 a check found a problem, a named thing is not found, a
change is refused or the store failed; 2 the input is wrong (usage, a value, a file).

Layer: the top, with the demo (which it runs): it may import any package.
"""

from __future__ import annotations

import sys

from shipyard.cli import (  # noqa: F401 - registers commands
    _admin_cmds,
    _alerts_cmds,
    _approval_cmds,
    _card_cmds,
    _demo_cmd,
    _deploy_cmds,
    _gc_cmd,
    _group_cmds,
    _import_cmds,
    _monitor_cmds,
    _predictions_cmds,
    _registry_cmds,
    _retrain_cmds,
    _scheduler_cmds,
    _score_cmd,
    _serve_cmd,
    _status_cmd,
    _trace_cmds,
    _traffic_cmds,
    _ui_cmd,
    _usage_cmds,
    _validate_cmds,
)
from shipyard.cli._app import app, run_cli


def main() -> None:
    """Console-script entry point."""
    sys.exit(run_cli())


__all__ = ["app", "main", "run_cli"]
