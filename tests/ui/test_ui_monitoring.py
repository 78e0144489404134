"""The monitoring page and the drill-down into one window (``/ui/models/{name}/monitoring``,
``.../windows/{run_id}`` and their ``/api/`` twins), over results stored by the real pipeline
(``monitor_window`` over a logged window)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from ui_support import add_users, browser, log_in, running_ui

from churn_data import log_predictions
from overview_data import performance_rows, register_churn, save_window, shifted
from shipyard import Client
from shipyard.checks import MonitorRequest, monitor_window
from shipyard.config import ProjectConfig
from shipyard.registry import Registry
from shipyard.scheduler import JobRuns
from shipyard.store import Store

PROJECT = ProjectConfig.model_validate(
    {
        "gates": {"require": False},
        "jobs": [
            {"name": "churn-drift", "kind": "monitor", "schedule": "0 * * * *", "model": "churn"},
            {"name": "other", "kind": "monitor", "schedule": "0 * * * *", "model": "other"},
        ],
    }
)


@dataclass
class Monitored:
    url: str
    drifted_run: str
    clean_run: str


@pytest.fixture
def monitored(
    client_for: Callable[[str], Client], store: Store, tmp_path: Path
) -> Iterator[Monitored]:
    """churn in production, a clean window 2 days ago, and a drifted logged window now
    (monitored by ``monitor_window``); two runs of its monitor job; the UI reads the log."""
    add_users(store)
    admin = client_for("admin")
    register_churn(admin, "churn")
    Registry(store, PROJECT).approve("churn", 1, actor="april", reason="ok")
    Registry(store, PROJECT).promote("churn", 1, actor="sam", reason="launch")
    now = datetime.now(UTC)
    clean = save_window(
        admin, "churn", shifted(5), end=now - timedelta(days=2), extra=performance_rows(0.8)
    )
    drifted_frame = shifted(6, "age")
    log_predictions(tmp_path / "log", drifted_frame)
    end = datetime.now(UTC)  # after the predictions were logged
    result = monitor_window(
        store,
        MonitorRequest(
            "churn:1",
            actor="cron",
            project=PROJECT,
            log_root=tmp_path / "log",
            start=end - timedelta(hours=1),
            end=end,
        ),
    )
    runs = JobRuns(store, owner="test:1")
    for job, status in (("churn-drift", "succeeded"), ("churn-drift", "failed"), ("other", "ok")):
        run = runs.start(job, trigger="schedule")
        runs.finish(run, status=status, message=f"{job} {status}", details={})
    with running_ui(store, project=PROJECT, predlog=tmp_path / "log") as url:
        yield Monitored(url, result.run_id, clean)


def test_the_monitoring_series_as_json(monitored: Monitored) -> None:
    with browser(monitored.url) as client:
        log_in(client, "vera")
        page = client.get("/api/models/churn/monitoring").json()
        year = client.get("/api/models/churn/monitoring", params={"days": 365}).json()
    # a year is read in time buckets by the database: here one window per bucket
    assert year["drift_share"]["points"] == 2 and year["days"] == 365
    assert year["drift_share"]["run"] == [monitored.clean_run, monitored.drifted_run]
    assert year["drift_share"]["value"] == page["drift_share"]["value"]
    assert year["drift_share"]["flagged"] == page["drift_share"]["flagged"]
    assert page["features"] == ["age", "income", "plan"] and page["feature"] == "age"
    drift = {f["feature"]: (f["windows"], f["flagged"]) for f in page["drift"]}
    assert drift == {"age": (2, 1), "income": (2, 0), "plan": (2, 0)}
    assert page["drift_share"]["points"] == 2
    assert page["drift_share"]["run"] == [monitored.clean_run, monitored.drifted_run]
    assert {s["metric"] for s in page["feature_scores"]} >= {"wasserstein", "psi"}
    accuracy = next(s for s in page["performance"] if s["metric"] == "accuracy")
    assert accuracy["points"] == 1 and accuracy["lower"][0] < accuracy["value"][0]
    arms = {(s["metric"], s["feature"]) for s in page["service"]}
    assert ("latency_p95", "*") in arms and ("error_rate", "arm:production") in arms
    assert [(j["job"], j["status"]) for j in page["jobs"]] == [
        ("churn-drift", "failed"),
        ("churn-drift", "succeeded"),
    ]
    breached = page["breached"]
    assert breached[0]["run"] == monitored.drifted_run and breached[0]["feature"] == "age"
    assert page["production_version_at_start"] is None
    assert [(m["action"], m["version"], m["reason"]) for m in page["alias_changes"]] == [
        ("set", 1, "launch")
    ]


def test_the_monitoring_page_links_the_breached_window(monitored: Monitored) -> None:
    with browser(monitored.url) as client:
        log_in(client, "vera")
        page = client.get("/ui/models/churn/monitoring", params={"days": 7, "feature": "plan"})
        window = client.get(f"/ui/models/churn/monitoring/windows/{monitored.drifted_run}")
        api = client.get(f"/api/models/churn/monitoring/windows/{monitored.drifted_run}")
    assert page.status_code == 200
    assert f'href="/ui/models/churn/monitoring/windows/{monitored.drifted_run}"' in page.text
    assert "Scores of plan" in page.text and 'data-plot="fig-share"' in page.text
    assert "churn-drift failed" in page.text  # the job runs' table
    assert "/ui/static/plotly.min.js" in page.text and 'id="plotly.js-style-global"' in page.text
    assert window.status_code == 200 and "Flagged: age: drift" in window.text
    detail = api.json()
    assert detail["run_id"] == monitored.drifted_run and detail["rows"] == 2_000
    assert "age: drift" in detail["flagged"] and len(detail["sample"]["rows"]) == 20
    ids = detail["sample"]["columns"].index("prediction_id")
    assert detail["sample"]["rows"][0][ids] == "p0"
    assert "p0" in window.text


def test_a_window_without_a_log(
    monitored: Monitored, store: Store, open_browser: Callable[[], httpx.Client]
) -> None:
    client = log_in(open_browser(), "vera")  # the UI of ui_url has no prediction log
    no_log = client.get(f"/api/models/churn/monitoring/windows/{monitored.drifted_run}").json()
    assert no_log["sample"] == {
        "columns": [],
        "rows": [],
        "note": "No prediction log is configured.",
    }
    with browser(monitored.url) as logged:
        log_in(logged, "vera")
        file_window = logged.get(f"/api/models/churn/monitoring/windows/{monitored.clean_run}")
    assert file_window.json()["sample"]["note"] == "The log has no rows in this window any more."


def test_bad_parameters_and_unknown_names(monitored: Monitored) -> None:
    with browser(monitored.url) as client:
        log_in(client, "vera")
        for days in ("abc", "9999", "0", "-3"):
            api = client.get("/api/models/churn/monitoring", params={"days": days})
            assert api.status_code == 400 and "days" in api.json()["error"], api.text
            page = client.get("/ui/models/churn/monitoring", params={"days": days})
            assert page.status_code == 400 and "days" in page.text
        feature = client.get("/api/models/churn/monitoring", params={"feature": "<x>"})
        assert feature.status_code == 404
        assert feature.json()["error"].startswith("Model 'churn' has no monitored feature '<x>'")
        page = client.get("/ui/models/churn/monitoring", params={"feature": "<x>"})
        assert page.status_code == 404 and "<x>" not in page.text and "&lt;x&gt;" in page.text
        assert client.get("/api/models/nope/monitoring").status_code == 404
        other_run = client.get("/api/models/churn/monitoring/windows/deadbeef")
        assert other_run.status_code == 404 and "no monitoring run" in other_run.json()["error"]
    with browser(monitored.url) as anonymous:
        assert anonymous.get("/api/models/churn/monitoring").status_code == 401
        assert anonymous.get("/ui/models/churn/monitoring").status_code == 303


def test_a_model_never_monitored(
    client_for: Callable[[str], Client], store: Store, open_browser: Callable[[], httpx.Client]
) -> None:
    add_users(store)
    Registry(store).create_model("fresh", actor="admin")
    client = log_in(open_browser(), "vera")
    page = client.get("/api/models/fresh/monitoring").json()
    assert page["features"] == [] and page["drift_share"] is None and page["breached"] == []
    html = client.get("/ui/models/fresh/monitoring")
    assert html.status_code == 200 and "No monitoring results in this period." in html.text
    save_window(client_for("admin"), "fresh", shifted(1), end=datetime.now(UTC))
    assert client.get("/api/models/fresh/monitoring").json()["features"] == [
        "age",
        "income",
        "plan",
    ]
