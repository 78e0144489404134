"""``shipyard validate`` (every gate, one stored record) and ``shipyard waive`` (an approver's
signed waiver of one failed gate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.text import Text

from shipyard.cli._app import JsonOption, app, client, console, print_json, project, row_progress
from shipyard.cli._predictions_cmds import LogDirOption, log_root


@app.command("validate")
def validate_cmd(
    ctx: typer.Context,
    name: str,
    version: int,
    against: str = typer.Option(
        "production", "--against", help="The champion's alias, judged on the same rows."
    ),
    data: Path = typer.Option(
        None, "--data", help="Fresh labelled rows (Parquet or CSV); default: see below."
    ),
    target: str = typer.Option(None, "--target", help="The label column of --data."),
    report: Path = typer.Option(None, "--report", help="Write the HTML report here."),
    show: bool = typer.Option(False, "--show", help="Show the latest stored record; run nothing."),
    log_dir: Path = LogDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Run every validation gate for a version against the champion and store the outcome.

    Both are judged on the same rows: --data; else the labelled production traffic of the
    policy's window when enough labels arrived; else the candidate's own eval rows. Exit 0
    when every gate passed, 1 when one failed. Limits come from [gates] and
    [models.NAME.gates] in shipyard.toml.
    """
    c = client(ctx)
    if show:
        _show(c, name, version, as_json)
        return
    from shipyard.checks import ValidationRequest, validate_version

    request = ValidationRequest(
        name,
        version,
        actor=c.user,
        project=project(ctx),
        against=against,
        data=data,
        target=target,
        report=report,
        log_root=log_root(ctx, log_dir),
    )
    with row_progress(quiet=as_json) as bar:
        task = bar.add_task(f"Validating {name} v{version}", total=None)  # gates vary

        def step(gate: str) -> None:
            bar.update(task, description=f"Validating {name} v{version}: {gate}", advance=1)

        result = validate_version(c.store, request, progress=step)
    if as_json:
        print_json(result.to_json())
    else:
        _print(result.to_json())
    raise typer.Exit(0 if result.passed else 1)


@app.command("waive")
def waive_cmd(
    ctx: typer.Context,
    name: str,
    version: int,
    gate: str = typer.Argument(..., help="The failed gate, as validate names it."),
    reason: str = typer.Option(..., "--reason", help="Why production may take it anyway."),
) -> None:
    """Sign a waiver of one failed gate (approvers only, never the author); shown on the card."""
    c = client(ctx)
    from shipyard.registry import Gates

    waiver = Gates(c.store).waive(name, version, gate, actor=c.user, reason=reason)
    console.print(
        f"{escape(waiver.approver)} waived gate [bold]{escape(gate)}[/] of {name} v{version}.",
        highlight=False,
    )


def _show(c: Any, name: str, version: int, as_json: bool) -> None:
    from shipyard.errors import NotFound
    from shipyard.registry import Gates

    gates = Gates(c.store)
    record = gates.latest(name, version)
    if record is None:
        raise NotFound(
            f"{name} v{version} has not been validated; run shipyard validate {name} {version}."
        )
    waived = {w.gate: w for w in gates.waivers(name, version)}
    document = {
        **record.report,
        "passed": record.passed,
        "failed": list(record.failed),
        "model": name,
        "version": version,
        "champion": record.champion,
        "record": record.id,
        "validated_at": record.created_at,
        "validated_by": record.created_by,
        "data_source": record.data_source,
        "waivers": [
            {"gate": w.gate, "approver": w.approver, "reason": w.reason} for w in waived.values()
        ],
    }
    if as_json:
        print_json(document)
    else:
        _print(document)


def _print(document: dict[str, Any]) -> None:
    """The gates as a table, then the verdict in one line."""
    from rich.table import Table

    name, version = document["model"], document["version"]
    champion = document.get("champion")
    against = f"against v{champion}" if champion is not None else "with no champion"
    t = Table(title=f"{name} v{version} {against}", title_justify="left", header_style="bold")
    for column in ("gate", "result", "value", "limit", "detail"):
        t.add_column(column)
    waived = {w["gate"] for w in document.get("waivers", [])}
    for gate in document.get("gates", []):
        t.add_row(
            Text(gate["name"]),
            _status(gate, waived),
            _number(gate.get("value")),
            _number(gate.get("limit")),
            Text(str(gate.get("detail", ""))),
        )
    console.print(t)
    if document.get("accept"):
        console.print(f"Acceptance criterion: {document['accept']}", highlight=False)
    console.print(f"Rows: {document.get('data_source', '')}", highlight=False, markup=False)
    if document.get("report"):
        console.print(f"Report: {document['report']}", highlight=False, markup=False)
    failed = [g for g in document.get("failed", []) if g not in waived]
    if not failed:
        console.print("[green]Every gate passed[/]" + (" (with waivers)." if waived else "."))
    else:
        console.print(
            f"[red]Failed:[/] {escape(', '.join(failed))}. Promotion is refused until they pass "
            f"or an approver waives them (shipyard waive {name} {version} GATE --reason ...).",
            highlight=False,
        )


def _status(gate: dict[str, Any], waived: set[str]) -> Text:
    if not gate.get("applicable", True):
        return Text("n/a", style="dim")
    if gate.get("passed"):
        return Text("pass", style="green")
    if gate["name"] in waived:
        return Text("waived", style="yellow")
    return Text("FAIL", style="bold red")


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
