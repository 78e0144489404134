"""``shipyard retrain NAME``: a candidate from ``[models.NAME.retrain]``, validated against
production, waiting for approval; ``shipyard retrain history NAME``: the retrainings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.text import Text
from typer.core import TyperGroup

from shipyard.cli._app import (
    JsonOption,
    app,
    client,
    console,
    err_console,
    print_json,
    project,
    settings,
    table,
)
from shipyard.cli._predictions_cmds import LogDirOption, log_root

if TYPE_CHECKING:
    from shipyard.checks import RetrainResult


class _RetrainGroup(TyperGroup):
    """``shipyard retrain NAME`` runs ``retrain run NAME``: a first word that is not a
    subcommand is a model name (a model called ``history`` needs ``retrain run history``)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # a click Context
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


retrain_app = typer.Typer(
    cls=_RetrainGroup,
    help="Retrain a model with its \\[models.NAME.retrain] entry point: 'shipyard retrain "
    "NAME'; 'shipyard retrain history NAME' lists the retrainings.",
    no_args_is_help=True,
)
app.add_typer(retrain_app, name="retrain")


@retrain_app.command("run")
def retrain_run_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name (with a \\[models.NAME.retrain] table)."),
    log_dir: Path = LogDirOption,
    report_dir: Path = typer.Option(
        None,
        "--report-dir",
        help="Where the validation report goes (default: 'reports' in Shipyard's home).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Train a candidate with the entry point as a tracked run, register it, validate it
    against production and notify the approvers; nothing swaps until one approves it.

    Exit 0 when it passed its gates, 1 when it failed them (it is registered all the same)
    or a retraining of the model is running already, 2 on bad input."""
    from shipyard.checks import RetrainRequest, retrain

    c = client(ctx)
    home = settings(ctx).home.expanduser().absolute()
    request = RetrainRequest(
        name,
        actor=c.user,
        project=project(ctx),
        log_root=log_root(ctx, log_dir),
        report_dir=report_dir or home / "reports",
    )
    if as_json:
        result = retrain(c.store, request)
        print_json(result.to_json())
    else:
        with console.status(f"Retraining {name}") as status:
            result = retrain(
                c.store, request, progress=lambda line: status.update(escape(line) + " ...")
            )
        _print_result(result)
    for warning in result.warnings:
        err_console.print(f"[bold yellow]Warning:[/] {escape(warning)}", soft_wrap=True)
    if not result.passed:
        raise typer.Exit(1)


def _print_result(result: RetrainResult) -> None:
    name, version = result.record.model_name, result.version
    console.print(
        f"Retraining #{result.record.id} of {escape(name)} ({escape(result.record.trigger)}): "
        f"tracked run {result.run_id}, {result.train_rows:,} training and "
        f"{result.eval_rows:,} eval rows from {escape(result.source)}",
        soft_wrap=True,
    )
    champion = f"v{result.champion}" if result.champion is not None else "none (first model)"
    table(
        f"Gates of {name} v{version} against production ({champion})",
        ["gate", "result", "value", "limit", "detail"],
        (
            (
                gate.get("name"),
                Text("passed", style="green")
                if gate.get("passed")
                else Text("FAILED", style="red"),
                _number(gate.get("value")),
                _number(gate.get("limit")),
                gate.get("detail", ""),
            )
            for gate in result.gates
        ),
    )
    if result.report_path is not None:
        console.print(f"Report: {escape(str(result.report_path))}", soft_wrap=True)
    if result.notified:
        console.print(f"Approvers notified through: {', '.join(result.notified)}")
    if result.passed:
        console.print(f"[green]Candidate {escape(name)} v{version} passed its gates.[/]")
    else:
        console.print(
            f"[red]Candidate {escape(name)} v{version} failed its gates[/] (it is registered; "
            "an approver may still waive a failed gate, see the report)."
        )
    console.print(f"Waiting for approval: {escape(result.approve_command)}", soft_wrap=True)


def _number(value: Any) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


@retrain_app.command("history")
def retrain_history_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="Model name (default: every model)."),
    limit: int = typer.Option(50, min=1, help="At most this many, newest first."),
    as_json: bool = JsonOption,
) -> None:
    """The retrainings (newest first): trigger, status, the candidate and its gates."""
    from shipyard.checks import RetrainRuns

    c = client(ctx, notify=False)
    if name:
        c.registry.get_model(name)  # an unknown name: NotFound, with "did you mean"
    records = RetrainRuns(c.store).history(name, limit=limit)
    if as_json:
        print_json(
            [
                {
                    "id": r.id,
                    "model": r.model_name,
                    "trigger": r.trigger,
                    "status": r.status,
                    "started_at": r.started_at,
                    "started_by": r.started_by,
                    "finished_at": r.finished_at,
                    "run_id": r.run_id,
                    "version": r.version,
                    "passed": r.passed,
                    "message": r.message,
                    "details": r.details,
                }
                for r in records
            ]
        )
        return
    columns = ["#", "trigger", "status", "started", "by", "version", "gates", "message"]
    table(
        f"Retrainings of {name}" if name else "Retrainings",
        columns if name else ["model", *columns],
        (
            (
                *(() if name else (r.model_name,)),
                r.id,
                r.trigger,
                _status(r.status),
                r.started_at,
                r.started_by,
                f"v{r.version}" if r.version is not None else "",
                "" if r.passed is None else "passed" if r.passed else "failed",
                r.message,
            )
            for r in records
        ),
    )


def _status(status: str) -> Text:
    style = {"succeeded": "green", "failed": "red"}.get(status, "yellow")
    return Text(status, style=style)
