"""``shipyard alerts list | ack``."""

from __future__ import annotations

from typing import Any

import typer

from shipyard.alerting import Alerts
from shipyard.cli._app import JsonOption, app, client, console, print_json, table

alerts_app = typer.Typer(help="Alerts raised by the rules in shipyard.toml.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("list")
def alerts_list_cmd(
    model: str = typer.Option(None, help="Only this model's alerts."),
    open_only: bool = typer.Option(False, "--open", help="Only unacknowledged alerts."),
    limit: int = typer.Option(50, min=1, max=100_000),
    as_json: bool = JsonOption,
) -> None:
    """Alerts, newest first."""
    rows: list[dict[str, Any]] = [
        {
            "id": a.id,
            "created_at": a.created_at,
            "rule": a.rule,
            "severity": a.severity,
            "model": a.model_name,
            "version": a.version,
            "metric": a.metric,
            "feature": a.feature,
            "value": a.value,
            "threshold": a.threshold,
            "status": a.status,
            "deliveries": a.deliveries,
            "acknowledged_by": a.acknowledged_by,
            "message": a.message,
        }
        for a in Alerts(client().store).list(model=model, unacknowledged=open_only, limit=limit)
    ]
    if as_json:
        print_json(rows)
        return
    table(
        "Alerts",
        [
            "id",
            "when",
            "rule",
            "severity",
            "model",
            "metric",
            "feature",
            "value",
            "status",
            "ack by",
        ],
        [
            (
                r["id"][:12],
                r["created_at"],
                r["rule"],
                r["severity"],
                f"{r['model']} v{r['version']}",
                r["metric"],
                r["feature"],
                r["value"],
                r["status"],
                r["acknowledged_by"],
            )
            for r in rows
        ],
    )


@alerts_app.command("ack")
def alerts_ack_cmd(alert_id: str) -> None:
    """Acknowledge an alert (recorded in the audit log)."""
    c = client()
    record = Alerts(c.store).acknowledge(alert_id, actor=c.user)
    console.print(f"{c.user} acknowledged alert {record.id} ({record.rule}).")
