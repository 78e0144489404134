"""Path traversal through the CLI: every command taking a model or object name (read from the
CLI's own command tree, so a new command is covered) gets each payload, and answers with one
line and exit code 1 or 2, never a traceback, and writes nothing outside its store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import typer

from cli_support import cli, point_cli_at
from shipyard.cli._app import app

#: The CLI gets its arguments decoded already: encodings are the HTTP test's business.
#: One payload, for time (a CLI call opens the store): a path climbing out, and a newline
#: that would inject a line into shipyard.toml. The other payloads meet the same name rules
#: (test_traversal.py's unit test) and the HTTP routes get them all.
PAYLOADS = ["../../../../etc/passwd\nname = 'x'"]
#: Commands that filter a read-only listing by the name: "nothing of that name" is an answer.
QUERIES = {"jobs history"}
#: Arguments naming something Shipyard keeps (model, group, alert rule, job...).
NAMES = {"name", "model"}
#: Commands that start a server, import from elsewhere or take files, not names.
#: ``users``: user names are database keys only (and set-password prompts).
SKIP = {
    "serve",
    "ui",
    "demo",
    "scheduler",
    "register",
    "import mlflow",
    "deploy bootstrap",
    "users",
}
#: What the other required arguments get.
FILLERS = {"version": "1", "risk_id": "1", "gate": "accuracy", "weights": "1=100"}


def _commands() -> list[tuple[list[str], list[Any]]]:
    out: list[tuple[list[str], list[Any]]] = []

    def walk(command: Any, path: list[str]) -> None:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
            return
        arguments = [p for p in command.params if p.param_type_name == "argument"]
        if (
            path[0] not in SKIP
            and " ".join(path) not in SKIP
            and any(p.name in NAMES for p in arguments)
        ):
            out.append((path, arguments))

    walk(typer.main.get_command(app), [])
    return out


def _tree(root: Path) -> set[str]:
    return {str(Path(d, f).relative_to(root)) for d, _, files in os.walk(root) for f in files}


@pytest.mark.slow
def test_every_named_command_refuses_traversal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    point_cli_at(monkeypatch, f"sqlite:///{tmp_path / 'home' / 'shipyard.db'}", tmp_path, toml="")
    monkeypatch.chdir(tmp_path)
    commands = _commands()
    assert len(commands) >= 25, [c for c, _ in commands]
    assert cli(capsys, "models", "create", "churn")[0] == 0  # a store exists, with a model
    before = _tree(tmp_path)
    refused_by_rule = 0
    failures = []
    for path, arguments in commands:
        for payload in PAYLOADS:
            argv = list(path)
            for argument in arguments:
                if argument.name in NAMES:
                    argv.append(payload)
                elif argument.required:
                    argv.append(FILLERS.get(argument.name, str(tmp_path / "out" / "x")))
            code, out, err = cli(capsys, *argv)
            if code not in (1, 2) and not (code == 0 and " ".join(path) in QUERIES):
                failures.append(f"shipyard {' '.join(path)} {payload!r}: exit {code}: {out}{err}")
            if code == 1 or "Invalid" in err:  # the name met its rule or its lookup
                refused_by_rule += 1
    assert not failures, "\n".join(failures[:30])
    # most commands took the name as far as its rule or its lookup (the others refused a
    # missing option first)
    assert refused_by_rule >= 20, refused_by_rule
    created = {p for p in _tree(tmp_path) - before if not p.startswith(("home/", "out/"))}
    assert not created, created
    assert (tmp_path / "shipyard.toml").read_text() == ""  # no rule written with a bad name
