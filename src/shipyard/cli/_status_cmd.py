"""``shipyard status``: the store, the database, the artifacts, the prediction log and the
servers' processes at a glance; ``--alert`` judges them with the ``[[alerts]]`` rules."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from shipyard.cli._app import JsonOption, app, client, console, print_json, project, table
from shipyard.cli._predictions_cmds import LogDirOption, log_root

if TYPE_CHECKING:
    from shipyard.checks import SystemHealth
    from shipyard.store.tables import AlertRecord


def _size(value: float | None) -> str:
    """Bytes as a short human figure (``12.4 MB``)."""
    if value is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError  # pragma: no cover


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    server: list[str] = typer.Option(
        None,
        "--server",
        help="A model server's URL (http://host:8000) to read the process of, from its "
        "/metrics; repeat for several.",
    ),
    log_dir: Path = LogDirOption,
    alert: bool = typer.Option(
        False,
        "--alert",
        help="Judge the figures with shipyard.toml's [[alerts]] rules (metric names as in "
        "/metrics) and send the alerts they raise; exit 1 if any fired.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Disk used by the database, the artifacts and the prediction log (its WAL backlog and
    Parquet), and each --server's memory, CPU and log queue."""
    from shipyard.checks import system_alerts, system_health

    c = client(ctx, notify=False)
    health = system_health(c.store, log_root=log_root(ctx, log_dir), servers=server or ())
    fired: list[AlertRecord] = []
    if alert:
        from shipyard.alerting import AlertConfig, Alerts

        config = AlertConfig.from_project(project(ctx))
        fired = Alerts(c.store).raise_all(
            system_alerts(health, config.rules), config.channels, actor=c.user
        )
    if as_json:
        body = health.to_json()
        if alert:
            body["alerts"] = [
                {"rule": a.rule, "metric": a.metric, "value": a.value, "status": a.status}
                for a in fired
            ]
        print_json(body)
    else:
        _print(health, fired)
    if fired:
        raise typer.Exit(1)


def _print(health: SystemHealth, fired: list[AlertRecord]) -> None:
    log = health.log
    table(
        "Store and prediction log",
        ["part", "where", "size", "detail"],
        [
            ("database", health.database_url, _size(health.database_bytes), ""),
            (
                "artifacts",
                health.artifacts_url,
                _size(health.artifact_bytes),
                f"{health.artifact_files} files" if health.artifact_files is not None else "",
            ),
            (
                "log WAL (backlog)",
                f"{log.root}/wal",
                _size(log.wal_bytes),
                f"{log.wal_segments} segments, oldest {log.wal_oldest_seconds:.0f} s",
            ),
            ("log Parquet", log.root, _size(log.parquet_bytes), f"{log.parquet_files} files"),
        ],
    )
    if health.servers:
        table(
            "Servers",
            ["server", "memory", "CPU s", "open files", "requests", "log queue", "error"],
            [
                (
                    s.url,
                    _size(s.memory_bytes),
                    s.cpu_seconds,
                    s.open_fds,
                    s.requests,
                    s.log_queue_depth,
                    s.error,
                )
                for s in health.servers
            ],
        )
    for error in health.errors:
        console.print(f"[yellow]Warning:[/] {escape(error)}", highlight=False)
    for record in fired:
        console.print(
            f"[bold red]Alert[/] {escape(f'{record.rule}: {record.message} ({record.status})')}",
            highlight=False,
        )
