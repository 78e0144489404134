"""``model_health``: written with every monitoring run, in the same transaction; it keeps the
newest window, and says in plain words what is wrong."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from overview_data import performance_rows, reference, register_churn, save_window, shifted
from shipyard import Client
from shipyard.config import ProjectConfig
from shipyard.errors import NotFound
from shipyard.monitoring import MonitoringResults, compute_drift
from shipyard.store import Store
from shipyard.store.tables import AuditEvent, ModelHealth
from shipyard.views import catalogue, window_detail


def _health(store: Store, name: str) -> ModelHealth:
    with store.read() as session:
        row = session.get(ModelHealth, name)
        assert row is not None
        session.expunge(row)
        return row


def test_a_saved_window_writes_the_models_health_row(
    client_for: Callable[[str], Client], store: Store
) -> None:
    client = client_for("admin")
    register_churn(client)
    end = datetime.now(UTC).replace(microsecond=0)
    run = save_window(
        client, "churn", shifted(1, "age", "plan"), end=end, extra=performance_rows(0.7)
    )
    row = _health(store, "churn")
    assert (row.run_id, row.version, row.window_end, row.rows) == (run, 1, end, 2_000)
    assert row.window_start == end - timedelta(hours=1)
    assert sorted(row.drifted) == ["age", "plan"] and row.features == 3
    accuracy = row.performance["accuracy"]
    assert 0.6 < accuracy["value"] < 0.8 and accuracy["flagged"] is False
    assert accuracy["lower"] < accuracy["value"] < accuracy["upper"]
    assert "accuracy.ci_low" not in row.performance and "labels" not in row.performance
    assert row.label_coverage == 1.0
    with store.read() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "monitoring.completed")
        ).one()
    assert event.details["run_id"] == run


def test_an_older_window_saved_later_does_not_replace_the_newest(
    client_for: Callable[[str], Client], store: Store
) -> None:
    client = client_for("admin")
    register_churn(client)
    end = datetime.now(UTC).replace(microsecond=0)
    newest = save_window(client, "churn", shifted(1), end=end)
    save_window(client, "churn", shifted(2, "age"), end=end - timedelta(days=3))
    row = _health(store, "churn")
    assert row.run_id == newest and row.window_end == end and row.drifted == []
    later = save_window(client, "churn", shifted(3, "income"), end=end + timedelta(hours=1))
    row = _health(store, "churn")
    assert row.run_id == later and row.drifted == ["income"]


def test_quality_breaches_are_named_feature_and_check(
    client_for: Callable[[str], Client], store: Store
) -> None:
    client = client_for("admin")
    register_churn(client)
    frame = shifted(1)
    frame.loc[: len(frame) // 2, "income"] = None
    save_window(client, "churn", frame, end=datetime.now(UTC))
    assert "income: missing" in _health(store, "churn").quality
    page = catalogue(store, ProjectConfig())
    (reason,) = page.models[0].health.reasons
    assert reason.startswith("quality: missing values in income")


def test_a_file_window_has_no_log_sample(
    client_for: Callable[[str], Client], store: Store, tmp_path: Path
) -> None:
    client = client_for("admin")
    register_churn(client)
    report = compute_drift(reference(), shifted(1))
    run = MonitoringResults(store).save(
        report, model="churn", version=1, source="inputs:batch.parquet", actor="cron"
    )
    detail = window_detail(store, "churn", run, predlog=tmp_path)
    assert detail.window_start is None and detail.rows == 2_000
    note = "This window was a file (inputs:batch.parquet), not the prediction log."
    assert detail.sample.note == note
    with pytest.raises(NotFound, match="There is no model 'nope'"):
        window_detail(store, "nope", run, predlog=None)


def test_staleness_follows_the_monitoring_schedule_and_the_criterion_is_judged(
    client_for: Callable[[str], Client], store: Store
) -> None:
    client = client_for("admin")
    for name in ("hourly", "daily", "accurate"):
        register_churn(client, name)
    now = datetime.now(UTC)
    three_hours_ago = now - timedelta(hours=3)
    save_window(client, "hourly", shifted(1), end=three_hours_ago)
    save_window(client, "daily", shifted(2), end=three_hours_ago, extra=performance_rows(0.7))
    save_window(client, "accurate", shifted(3), end=now, extra=performance_rows(0.95))
    job = {"name": "h", "kind": "monitor", "schedule": "0 * * * *", "model": "hourly@production"}
    project = ProjectConfig.model_validate(
        {
            "jobs": [job],
            "models": {
                "daily": {"accept": "accuracy >= 0.9"},
                "accurate": {"accept": "accuracy >= 0.9"},
            },
        }
    )
    models = {m.name: m for m in catalogue(store, project).models}
    assert models["hourly"].health.reasons == ["not monitored for 3 hours"]
    assert models["hourly"].health.stale
    daily = models["daily"].health  # no job: stale after 2 days
    assert daily.reasons == ["performance below the acceptance criterion"]
    assert (daily.live.status, daily.live.criterion) == ("not met", "accuracy >= 0.9")
    accurate = models["accurate"].health
    assert accurate.status == "healthy" and accurate.live.status == "met"
    assert accurate.live.lower is not None and accurate.live.lower < accurate.live.value  # type: ignore[operator]
    unlabelled = catalogue(
        store, ProjectConfig.model_validate({"models": {"hourly": {"accept": "f1 >= 0.5"}}})
    )
    hourly = next(m for m in unlabelled.models if m.name == "hourly")
    assert hourly.health.live.status == "no labels yet"
