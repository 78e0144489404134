"""Telling the approvers about a retrained candidate, through the alert channels.

The notification is an alert (rule ``retrain:<model>``, metric ``retrain.candidate``) sent
through the named ``[channels.*]`` and stored and audited like any alert, so ``shipyard
alerts list`` shows it. Its text names the candidate, the champion, each gate's outcome
(value against limit) and the report, and says that nothing swaps until someone approves.
A channel that fails is returned as a warning: the retraining itself succeeded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.config import ProjectConfig
from shipyard.store import Store

if TYPE_CHECKING:
    from shipyard.checks._retrain import RetrainResult

#: Seconds each channel may spend on the notification, retries included.
NOTIFY_SECONDS = 10.0


def gate_line(gate: dict[str, Any]) -> str:
    """One gate as people read it: ``passed: 0.871 vs limit 0.85``.

    >>> gate_line({"name": "metric:roc_auc", "passed": False, "value": 0.8, "limit": 0.85})
    'FAILED: 0.8 vs limit 0.85'
    """
    verdict = "passed" if gate.get("passed") else "FAILED"
    value, limit = gate.get("value"), gate.get("limit")
    if value is None and limit is None:
        return f"{verdict}: {gate.get('detail') or 'no value'}"
    shown = "-" if value is None else f"{value:.4g}"
    return f"{verdict}: {shown} vs limit {'-' if limit is None else f'{limit:.4g}'}"


def notify_approvers(
    store: Store, project: ProjectConfig, channels: list[str], result: RetrainResult
) -> tuple[list[str], list[str]]:
    """Send the candidate's notification through ``channels``; returns the channels that
    delivered it and the warnings (a channel that failed, or none declared)."""
    if not channels:
        return [], [
            f"no channel to notify the approvers: set channels in "
            f"[models.{result.record.model_name}.retrain] or [scheduler]"
        ]
    from shipyard.alerting import Alert, AlertRule, Alerts, channels_from_project

    name, version = result.record.model_name, result.version
    verdict = "passed its gates" if result.passed else "FAILED its gates"
    champion = f"v{result.champion}" if result.champion is not None else "none (first model)"
    facts = {
        "Candidate": f"{name} v{version}",
        "Champion": champion,
        "Verdict": verdict,
        "Trigger": result.record.trigger,
        "Data": result.source,
        "Tracked run": result.run_id,
    }
    for gate in result.gates:
        facts[f"Gate {gate.get('name')}"] = gate_line(gate)
    if result.report_path is not None:
        facts["Report"] = str(result.report_path)
    facts["Next"] = result.approve_command
    alert = Alert(
        rule=f"retrain:{name}",
        severity="info" if result.passed else "warning",
        model=name,
        version=version,
        metric="retrain.candidate",
        value=1.0 if result.passed else 0.0,
        threshold=1.0,
        title=f"Retrained {name}: v{version} {verdict}, waiting for approval",
        message=f"{name} v{version} was retrained and {verdict} against production "
        f"({champion}). Nothing swaps until an approver approves it: {result.approve_command}",
        facts=facts,
        link=str(result.report_path) if result.report_path else None,
    )
    rule = AlertRule(
        name=f"retrain:{name}",
        metric="retrain.candidate",
        severity=alert.severity,
        cooldown="0m",  # every candidate is news
        channels=channels,
    )
    try:
        built = channels_from_project(project)
        (record,) = Alerts(store).raise_all(
            [(rule, alert)], built, actor=result.record.started_by, budget=NOTIFY_SECONDS
        )
    except Exception as exc:  # the retraining succeeded; a notification problem is a warning
        return [], [f"the approvers were not notified: {type(exc).__name__}: {exc}"]
    sent = [k for k, d in record.deliveries.items() if d["ok"]]
    warnings = [
        f"channel '{k}' did not deliver the notification: {d['error']}"
        for k, d in record.deliveries.items()
        if not d["ok"]
    ]
    return sent, warnings
