"""A ``monitor`` job on a real logged window: results stored, rules fired, report written; an
empty window fails the run with a clear message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alerting_support import HttpRecorder
from sklearn.ensemble import HistGradientBoostingClassifier

from churn_data import churn_frame, log_predictions
from shipyard import Client
from shipyard.alerting import Alerts
from shipyard.monitoring import MonitoringResults
from shipyard.scheduler import Scheduler
from shipyard.store import Store

MakeScheduler = Callable[..., Scheduler]  # the conftest fixture


@pytest.fixture
def churn(client_for: Callable[[str], Client]) -> None:
    X = churn_frame(3_000, 0)
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features=["plan"])
    model.fit(X, (X["age"] > 45).astype(int))
    client_for("admin").register(model, name="churn", X_train=X, y_train=None, onnx=False)


def test_a_monitor_job_stores_results_fires_rules_and_fails_on_an_empty_window(
    churn: None,
    make_scheduler: MakeScheduler,
    store: Store,
    tmp_path: Path,
    http_server: Callable[..., HttpRecorder],
) -> None:
    shifted = churn_frame(2_000, 1)
    shifted["age"] += 5.0
    log_predictions(tmp_path / "predictions", shifted)
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
