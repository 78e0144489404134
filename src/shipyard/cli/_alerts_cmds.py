"""``shipyard alerts list | ack | add | rules``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from shipyard.cli._app import JsonOption, app, client, console, print_json, project, settings, table
from shipyard.cli._io import replace_file
from shipyard.errors import InvalidInput

alerts_app = typer.Typer(help="Alerts raised by the rules in shipyard.toml.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("list")
def alerts_list_cmd(
    ctx: typer.Context,
    model: str = typer.Option(None, help="Only this model's alerts."),
    open_only: bool = typer.Option(False, "--open", help="Only unacknowledged alerts."),
    limit: int = typer.Option(50, min=1, max=100_000),
    as_json: bool = JsonOption,
) -> None:
    """Alerts, newest first."""
    from shipyard.alerting import Alerts

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
        for a in Alerts(client(ctx, notify=False).store).list(
            model=model, unacknowledged=open_only, limit=limit
        )
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
def alerts_ack_cmd(ctx: typer.Context, alert_id: str) -> None:
    """Acknowledge an alert (recorded in the audit log)."""
    from shipyard.alerting import Alerts

    c = client(ctx, notify=False)
    record = Alerts(c.store).acknowledge(alert_id, actor=c.user)
    console.print(f"{c.user} acknowledged alert {record.id} ({record.rule}).")


@alerts_app.command("add")
def alerts_add_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The rule's name, unique in shipyard.toml."),
    metric: str = typer.Option(..., "--metric", help="drift, psi, ks, accuracy, ..."),
    feature: str = typer.Option("*", "--feature", help="One feature, or * for any."),
    threshold: float = typer.Option(None, "--threshold", help="Fire when the value is above."),
    below: float = typer.Option(None, "--below", help="Fire when the value is below."),
    window: str = typer.Option(
        None, "--window", help="Judge the mean over this span (e.g. 6h) instead of the latest."
    ),
    severity: str = typer.Option("warning", "--severity", help="info, warning or critical."),
    cooldown: str = typer.Option("1h", "--cooldown", help="No repeat within this span."),
    channels: list[str] = typer.Option(
        None, "--channel", help="A channel declared in shipyard.toml; repeat for several."
    ),
) -> None:
    """Append an alert rule to shipyard.toml; the whole file is checked before it is replaced.

    Without --threshold or --below the rule fires on the metric's own flag.
    """
    from shipyard.audit import append_event

    path = settings(ctx).config
    rule: dict[str, Any] = {"name": name, "metric": metric, "feature": feature}
    if threshold is not None:
        rule["threshold"] = threshold
    if below is not None:
        rule["below"] = below
    if window is not None:
        rule["window"] = window
    rule.update(severity=severity, cooldown=cooldown, channels=list(channels or []))
    _with_rule(path, rule)  # checked before the store is opened
    c = client(ctx, notify=False)  # a rule added is not a registry event
    with c.store.write() as session:
        # The audit head is locked first, so concurrent `alerts add` queue up here.
        append_event(
            session,
            actor=c.user,
            action="alerts.rule_added",
            subject=f"alert-rule:{name}",
            details={"config": str(path), "rule": rule},
        )
        # Re-read under the lock; an error rolls the event back, a write replaces the file.
        replace_file(path, _with_rule(path, rule))
    where = f" (mean over {window})" if window else ""
    console.print(f"Added alert rule '{name}' to {path}{where}.", highlight=False)


def _with_rule(path: Path, rule: dict[str, Any]) -> bytes:
    """``path``'s bytes plus an ``[[alerts]]`` block for ``rule``, if the whole is valid.

    The file as it is is checked first, so its own errors are reported as such.
    """
    from shipyard.config import read_project_text

    try:
        text = read_project_text(path)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc.message} Fix it first; it was left unchanged.") from exc
    _check(path, text, "Fix it first; it was left unchanged.")
    if text and not text.endswith("\n"):
        text += "\n"
    if text:
        text += "\n"
    text += "[[alerts]]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in rule.items())
    _check(path, text, f"The rule was not added; '{path}' was left unchanged.")
    return text.encode("utf-8")


def _check(path: Path, text: str, then: str) -> None:
    """The whole file (every table), channels built by their types, [[notify]] events."""
    from shipyard.alerting import AlertConfig, notify_rules
    from shipyard.config import load_project

    try:
        would_be = load_project(path, text=text)
        AlertConfig.from_project(would_be)
        notify_rules(would_be)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc.message} {then}") from exc


def _toml_value(value: Any) -> str:
    """A TOML literal for a string, number or list of strings (tomlkit is not a dependency)."""
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return repr(float(value))


def _toml_string(value: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@alerts_app.command("rules")
def alerts_rules_cmd(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """The alert rules and registry notifications declared in shipyard.toml."""
    from shipyard.alerting import AlertConfig, notify_rules

    parsed = project(ctx)
    path = parsed.path
    config = AlertConfig.from_project(parsed)
    notify = notify_rules(parsed)
    alerts: list[dict[str, Any]] = [
        {
            "name": r.name,
            "metric": r.metric,
            "feature": r.feature,
            "condition": r.condition,
            "window": r.window,
            "severity": r.severity,
            "cooldown": r.cooldown,
            "channels": r.channels,
        }
        for r in config.rules
    ]
    notifications: list[dict[str, Any]] = [
        {
            "name": r.name,
            "events": r.events,
            "models": r.models,
            "severity": r.severity,
            "channels": r.channels,
        }
        for r in notify
    ]
    if as_json:
        print_json({"config": str(path), "alerts": alerts, "notify": notifications})
        return
    table(
        escape(f"Alert rules ([[alerts]] in {path})"),
        ["name", "metric", "feature", "condition", "window", "severity", "cooldown", "channels"],
        [
            (
                a["name"],
                a["metric"],
                a["feature"],
                a["condition"],
                a["window"] or "latest",
                a["severity"],
                a["cooldown"],
                ", ".join(a["channels"]),
            )
            for a in alerts
        ],
    )
    table(
        escape("Registry notifications ([[notify]])"),
        ["name", "events", "models", "severity", "channels"],
        [
            (
                n["name"],
                ", ".join(n["events"]),
                ", ".join(n["models"]) or "all",
                n["severity"],
                ", ".join(n["channels"]),
            )
            for n in notifications
        ],
    )
