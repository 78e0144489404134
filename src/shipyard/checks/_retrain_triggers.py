"""Alerts that start a retraining: the caller of a monitoring run (``shipyard monitor run``,
the scheduler's ``monitor`` job) hands its alerts to ``retrain_on_alerts`` once the run is
complete and stored.

An alert asks for a retraining of its model when its ``[[alerts]]`` rule says
``action = "retrain"``, or when the model's ``[models.NAME.retrain]`` says ``on_drift = true``
and the alert is about a drift metric (``drift``, ``drift_share`` or a drift test's score:
``psi``, ``ks``...). An alert held back by its cool-down starts nothing (the alert that did
go out started one already). One retraining per model per monitoring run, with trigger
``alert:<alert id>``; one already running is reported, not started twice; a failure is
reported, never raised: the monitoring run's own outcome stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.checks._retrain import RetrainRequest, RetrainResult, Status, retrain
from shipyard.config import ProjectConfig
from shipyard.errors import InvalidTransition
from shipyard.store import Store


def drift_metrics() -> frozenset[str]:
    """The monitoring metrics that are about drift: the verdicts and every drift test.

    >>> sorted(drift_metrics())[:3]
    ['chi_square', 'csi', 'drift']
    """
    from shipyard.monitoring import DRIFT_TESTS

    return frozenset({"drift", "drift_share", *(test.name for test in DRIFT_TESTS)})


@dataclass(frozen=True)
class AlertRetrain:
    """One retraining an alert asked for: ``status`` is ``started`` (``result`` holds what
    it made), ``running`` (one was running already), ``failed`` or ``no-policy``;
    ``message`` says it in one sentence."""

    model: str
    alert_id: str
    status: str
    message: str
    result: RetrainResult | None = None

    def to_json(self) -> dict[str, Any]:
        """For job details and ``--json``."""
        return {
            "model": self.model,
            "alert": self.alert_id,
            "status": self.status,
            "message": self.message,
            "version": self.result.version if self.result else None,
            "passed": self.result.passed if self.result else None,
        }


def alerts_asking_retrain(project: ProjectConfig, alerts: Sequence[Any]) -> dict[str, Any]:
    """The first alert of each model that asks for a retraining (see the module docstring),
    by model name; ``alerts`` are the stored alert records of one monitoring run.

    >>> from types import SimpleNamespace as Record
    >>> project = ProjectConfig.model_validate({"alerts": [
    ...     {"name": "age", "metric": "psi", "threshold": 0.2, "action": "retrain"}]})
    >>> fired = Record(id="a1", rule="age", metric="psi", model_name="churn", status="sent")
    >>> alerts_asking_retrain(project, [fired])["churn"].id
    'a1'
    """
    actions = {rule.name: rule.action for rule in project.alerts}
    drift = drift_metrics()
    chosen: dict[str, Any] = {}
    for alert in alerts:
        if alert.status == "suppressed" or alert.model_name in chosen:
            continue
        table = project.models.get(alert.model_name)
        on_drift = table is not None and table.retrain is not None and table.retrain.on_drift
        if actions.get(alert.rule) == "retrain" or (on_drift and alert.metric in drift):
            chosen[alert.model_name] = alert
    return chosen


def retrain_on_alerts(
    store: Store,
    alerts: Sequence[Any],
    *,
    actor: str,
    project: ProjectConfig,
    log_root: Path,
    report_dir: Path | None = None,
    progress: Status | None = None,
) -> list[AlertRetrain]:
    """Start the retrainings ``alerts`` ask for, one per model; never raises for a refused
    or failed one (its ``AlertRetrain`` says what happened).

    >>> outcomes = retrain_on_alerts(store, result.alerts, actor="cron", project=project,
    ...                              log_root=Path("predictions"))  # doctest: +SKIP
    >>> [(o.model, o.status) for o in outcomes]  # doctest: +SKIP
    [('churn', 'started')]
    """
    outcomes = []
    for model, alert in alerts_asking_retrain(project, alerts).items():
        table = project.models.get(model)
        if table is None or table.retrain is None:
            outcomes.append(
                AlertRetrain(
                    model,
                    alert.id,
                    "no-policy",
                    f"alert {alert.id} ({alert.rule}) asks to retrain {model}, which has no "
                    f"[models.{model}.retrain] table: nothing was started.",
                )
            )
            continue
        request = RetrainRequest(
            model,
            actor=actor,
            project=project,
            log_root=log_root,
            trigger=f"alert:{alert.id}",
            report_dir=report_dir,
        )
        try:
            result = retrain(store, request, progress=progress)
        except InvalidTransition as exc:
            outcomes.append(AlertRetrain(model, alert.id, "running", exc.message))
            continue
        except Exception as exc:  # reported: the monitoring run's own outcome stands
            detail = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            outcomes.append(
                AlertRetrain(model, alert.id, "failed", f"retraining {model} failed: {detail}")
            )
            continue
        verdict = "passed its gates" if result.passed else "failed its gates"
        outcomes.append(
            AlertRetrain(
                model,
                alert.id,
                "started",
                f"alert {alert.id} retrained {model}: v{result.version} {verdict}, waiting "
                f"for approval ({result.approve_command}).",
                result,
            )
        )
    return outcomes
