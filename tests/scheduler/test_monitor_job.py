"""A ``monitor`` job on a real logged window: results stored, rules fired, report written; an
empty window fails the run with a clear message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from alerting_support import HttpRecorder
from sklearn.ensemble import HistGradientBoostingClassifier

from shipyard import Client
from shipyard.alerting import Alerts
from shipyard.monitoring import MonitoringResults
from shipyard.scheduler import Scheduler
from shipyard.store import Store

MakeScheduler = Callable[..., Scheduler]  # the conftest fixture


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(45, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
        }
    )


@pytest.fixture
def churn(client_for: Callable[[str], Client]) -> None:
    X = _frame(3_000, 0)
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features=["plan"])
    model.fit(X, (X["age"] > 45).astype(int))
    client_for("admin").register(model, name="churn", X_train=X, y_train=None, onnx=False)


def _log(root: Path, frame: pd.DataFrame) -> None:
    from shipyard.serving import PredictionLog

    log = PredictionLog(root).open()
    log.append(
        {
            "prediction_id": f"p{i}",
            "model": "churn",
            "version": 1,
            "arm": "production",
            "inputs": row,
            "prediction": 1,
            "proba": {"0": 0.3, "1": 0.7},
            "latency_ms": 1.0,
            "status": "ok",
        }
        for i, row in enumerate(frame.to_dict(orient="records"))
    )
    log.close()


def test_a_monitor_job_stores_results_fires_rules_and_fails_on_an_empty_window(
    churn: None,
    make_scheduler: MakeScheduler,
    store: Store,
    tmp_path: Path,
    http_server: Callable[..., HttpRecorder],
) -> None:
    shifted = _frame(2_000, 1)
    shifted["age"] += 5.0
    _log(tmp_path / "predictions", shifted)
    hook = http_server(200)
    (tmp_path / "empty").mkdir()
    scheduler = make_scheduler(
        f"""
[channels.hook]
type = "webhook"
url = "{hook.url}"
timeout = 2.0
attempts = 1

[[alerts]]
name = "age-drift"
metric = "drift"
feature = "age"
severity = "critical"
channels = ["hook"]

[[jobs]]
name = "churn-drift"
kind = "monitor"
schedule = "0 * * * *"
model = "churn:1"
window = "1h"
report = "{tmp_path}/reports/{{model}}-v{{version}}.html"

[[jobs]]
name = "churn-quiet"
kind = "monitor"
schedule = "0 * * * *"
model = "churn:1"
window = "1h"
log_dir = "{tmp_path / "empty"}"
"""
    )
    run = scheduler.run_job(scheduler.config.job("churn-drift"))
    assert run.status == "succeeded", run.message
    assert run.message == "churn v1: 2,000 rows, flagged: age"
    assert run.details["rows"] == 2_000 and run.details["drifted"] is False
    report = tmp_path / "reports" / "churn-v1.html"
    assert run.details["report"] == str(report) and "Plotly.newPlot" in report.read_text()
    (series,) = MonitoringResults(store).history("churn", metric="drift", feature="age")
    assert series.run_id == run.details["monitoring_run"]
    assert series.value == 1.0 and series.flagged and series.rows == 2_000
    (alert,) = run.details["alerts"]
    assert (alert["rule"], alert["status"]) == ("age-drift", "sent")
    (request,) = hook.requests
    assert request.body["alert"]["feature"] == "age"
    assert request.body["alert"]["link"] == str(report)  # the rules see the written report
    (stored,) = Alerts(store).list()
    assert stored.id == alert["id"] and stored.rule == "age-drift"
    # the service section is stored with the drift results, as `monitor run` does
    assert run.details["requests"] >= 1
    (volume,) = MonitoringResults(store).history("churn", metric="requests", feature="*")
    assert volume.run_id == run.details["monitoring_run"] and volume.value >= 1

    quiet = scheduler.run_job(scheduler.config.job("churn-quiet"))
    assert quiet.status == "failed" and quiet.details["error"] == "NotFound"
    assert quiet.message.startswith("No logged predictions of churn v1 between ")
    assert "nothing to monitor" in quiet.message
    assert len(MonitoringResults(store).history("churn", metric="rows")) == 1  # nothing stored
