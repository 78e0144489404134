"""``monitor_window`` over a log window estimates a classifier's performance without labels
(CBPE calibrated on the archive's eval outputs), stores ``estimated_<metric>`` beside the
realised metrics, and an ``[[alerts]]`` rule on ``estimated_accuracy`` fires from it; without
eval outputs, or for a regressor, the run says why there is no estimate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shifted_churn import labelled, log_outputs, register_model
from shipyard import Client
from shipyard.checks import MonitorRequest, MonitorResult, monitor_window
from shipyard.config import ProjectConfig
from shipyard.monitoring import MonitoringResults
from shipyard.store import Store

RULE = {"name": "estimated", "metric": "estimated_accuracy", "below": 0.8}


def _run(store: Store, root: Path, project: ProjectConfig, report: bool = True) -> MonitorResult:
    end = datetime.now(UTC) + timedelta(minutes=1)
    request = MonitorRequest(
        "churn:1",
        actor="cron",
        project=project,
        log_root=root,
        start=end - timedelta(hours=1),
        end=end,
        label_delay="0",
        report=root.parent / "report.html" if report else None,
    )
    return monitor_window(store, request)


def test_the_estimate_is_stored_reported_and_alerted(
    client_for: Callable[[str], Client], store: Store, tmp_path: Path
) -> None:
    model = register_model(client_for("admin"))
    root = tmp_path / "log"
    X, y = labelled(3_000, 2, shift=15.0)  # the window moved to the decision boundary
    log_outputs(root, model, X, y, with_labels=1_500)
    project = ProjectConfig.model_validate({"alerts": [RULE]})

    result = _run(store, root, project)
    estimate, performance = result.estimate, result.performance
    assert estimate is not None and performance is not None and result.estimate_note is None
    assert estimate.n == 3_000 and estimate.reference_rows == 2_000
    accuracy = estimate.metric("accuracy")
    assert accuracy.value is not None and accuracy.ci_low is not None
    assert accuracy.value < 0.8  # the estimate saw the drop without a label...
    realised = performance.metric("accuracy").value  # on the 1,500 labelled predictions
    assert realised is not None and accuracy.ci_high is not None
    assert accuracy.ci_low < realised < accuracy.ci_high  # ...within its interval
    truth = (model.predict(X) == y).mean()  # on all 3,000
    assert accuracy.ci_low < truth < accuracy.ci_high

    assert [a.rule for a in result.alerts] == ["estimated"] and result.breached
    assert "estimated_accuracy is" in result.alerts[0].message
    assert "estimated_accuracy" in result.extra_metrics
    results = MonitoringResults(store)
    stored = {
        metric: [r.value for r in results.history("churn", metric=metric, feature="*")]
        for metric in (
            "estimated_accuracy",
            "estimated_accuracy.ci_low",
            "estimated_accuracy.ci_high",
            "estimated_f1",
            "estimated_roc_auc",
            "accuracy",
        )
    }
    assert stored["estimated_accuracy"] == [pytest.approx(accuracy.value)]
    assert stored["estimated_accuracy.ci_low"] == [pytest.approx(accuracy.ci_low)]
    assert stored["estimated_accuracy.ci_high"] == [pytest.approx(accuracy.ci_high)]
    assert len(stored["estimated_f1"]) == len(stored["estimated_roc_auc"]) == 1
    assert stored["accuracy"] == [pytest.approx(realised)]
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Estimated without labels (CBPE" in page and "no concept drift" in page
    assert "estimated (dashed) vs realised over time" in page and "<script src=" not in page


def test_no_eval_outputs_no_estimate_and_one_line_why(
    client_for: Callable[[str], Client], store: Store, tmp_path: Path
) -> None:
    model = register_model(client_for("admin"), with_eval=False)
    root = tmp_path / "log"
    X, y = labelled(300, 3, shift=15.0)
    log_outputs(root, model, X, y, with_labels=0)
    result = _run(store, root, ProjectConfig.model_validate({"alerts": [RULE]}))
    assert result.estimate is None and result.alerts == []
    assert result.estimate_note is not None and "no eval outputs" in result.estimate_note
    assert "\n" not in result.estimate_note
    assert MonitoringResults(store).history("churn", metric="estimated_accuracy") == []
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "No label-free estimate: the archive has no eval outputs" in page


def test_a_regressor_gets_no_estimate(
    client_for: Callable[[str], Client], store: Store, tmp_path: Path
) -> None:
    model = register_model(client_for("admin"), regressor=True)
    root = tmp_path / "log"
    X, y = labelled(300, 4)
    log_outputs(root, model, X, y, with_labels=0)
    result = _run(store, root, ProjectConfig(), report=False)
    assert result.estimate is None and result.estimate_note is not None
    assert "regressor" in result.estimate_note
