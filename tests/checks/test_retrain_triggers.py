"""Which alerts start a retraining (``action = "retrain"``, ``on_drift`` on a drift metric),
and ``retrain_on_alerts`` after a real monitoring run: started once per model, a running
one reported, a model without a retrain table reported, never raised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from churn_data import churn_frame, log_predictions
from retrain_project import hold_running, labelled, project, register_champion, write_project
from shipyard.checks import (
    MonitorRequest,
    RetrainRuns,
    alerts_asking_retrain,
    drift_metrics,
    monitor_window,
    retrain_on_alerts,
)
from shipyard.config import ProjectConfig, load_project
from shipyard.store import Store


def _alert(id: str, rule: str, metric: str, model: str = "churn", status: str = "sent") -> Any:
    return SimpleNamespace(id=id, rule=rule, metric=metric, model_name=model, status=status)


def test_which_alerts_ask_for_a_retraining() -> None:
    rules = [
        {"name": "acc", "metric": "accuracy", "below": 0.8, "action": "retrain"},
        {"name": "psi", "metric": "psi", "threshold": 0.2},
        {"name": "missing", "metric": "quality.missing", "threshold": 0.1},
    ]
    on_drift = project(alerts=rules, data="x.csv", on_drift=True)
    plain = project(alerts=rules, data="x.csv")
    missing, psi, acc = (
        _alert("a1", "missing", "quality.missing"),
        _alert("a2", "psi", "psi"),
        _alert("a3", "acc", "accuracy"),
    )
    assert {"drift", "drift_share", "psi", "ks", "wasserstein"} <= drift_metrics()
    assert alerts_asking_retrain(on_drift, [missing, psi, acc])["churn"].id == "a2"
    assert alerts_asking_retrain(plain, [missing, psi]) == {}
    assert alerts_asking_retrain(plain, [missing, psi, acc])["churn"].id == "a3"
    held_back = _alert("a4", "psi", "psi", status="suppressed")
    assert alerts_asking_retrain(on_drift, [held_back]) == {}


def test_retrain_on_a_drift_alert_once_and_not_twice(store: Store, tmp_path: Path) -> None:
    write_project(tmp_path)
    labelled(400, 1).to_csv(tmp_path / "rows.csv", index=False)
    register_champion(store)
    shifted = churn_frame(2_000, 2)
    shifted["age"] += 8.0
    log_predictions(tmp_path / "log", shifted)
    rules = [{"name": "age", "metric": "drift", "feature": "age", "action": "retrain"}]
    (tmp_path / "shipyard.toml").write_text(
        '[gates]\nrequire = false\n\n[models.churn.retrain]\nentry = "train_churn:train"\n'
        'target = "churned"\ndata = "rows.csv"\n\n[[alerts]]\nname = "age"\n'
        'metric = "drift"\nfeature = "age"\naction = "retrain"\n',
        encoding="utf-8",
    )
    config = load_project(tmp_path / "shipyard.toml")  # the project folder: tmp_path
    end = datetime.now(UTC) + timedelta(minutes=1)
    request = MonitorRequest(
        "churn:1",
        actor="cron",
        project=config,
        log_root=tmp_path / "log",
        start=end - timedelta(hours=1),
        end=end,
    )
    result = monitor_window(store, request)
    (alert,) = result.alerts

    (outcome,) = retrain_on_alerts(
        store,
        result.alerts,
        actor="cron",
        project=config,
        log_root=tmp_path / "log",
        report_dir=tmp_path / "reports",
    )
    assert outcome.status == "started", outcome.message
    assert outcome.alert_id == alert.id and outcome.result is not None
    assert outcome.result.version == 2 and outcome.to_json()["version"] == 2

    hold_running(store, by="dave")
    (again,) = retrain_on_alerts(
        store, result.alerts, actor="cron", project=config, log_root=tmp_path / "log"
    )
    assert again.status == "running" and "already running" in again.message
    assert [r.trigger for r in RetrainRuns(store).history("churn")][-1] == f"alert:{alert.id}"

    bare = ProjectConfig.model_validate({"alerts": rules})
    (nothing,) = retrain_on_alerts(
        store, result.alerts, actor="cron", project=bare, log_root=tmp_path
    )
    assert nothing.status == "no-policy" and "no [models.churn.retrain] table" in nothing.message
