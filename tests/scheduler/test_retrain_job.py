"""The ``retrain`` job kind: declared by ``[[jobs]]`` or by ``schedule`` in
``[models.NAME.retrain]`` (job ``retrain-NAME``); it retrains with trigger ``schedule:<job>``,
reports a retraining already running without failing; a ``monitor`` job whose drift alert
asks for a retraining (``on_drift``) starts one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from churn_data import churn_frame, log_predictions
from retrain_project import hold_running, labelled, register_champion, write_project
from shipyard.checks import RetrainRuns
from shipyard.config import ProjectConfig
from shipyard.errors import InvalidInput
from shipyard.scheduler import RetrainParams, Scheduler, SchedulerConfig
from shipyard.store import Store

MakeScheduler = Callable[..., Scheduler]  # the conftest fixture

RETRAIN = """
[gates]
require = false

[models.churn.retrain]
entry = "train_churn:train"
target = "churned"
data = "rows.csv"
"""


def _project(**retrain: object) -> ProjectConfig:
    table = {"entry": "m:f", "target": "y", "data": "x.csv", **retrain}
    return ProjectConfig.model_validate({"models": {"churn": {"retrain": table}}})


def test_a_schedule_declares_the_job_retrain_name() -> None:
    config = SchedulerConfig.from_project(_project(schedule="0 3 * * 1"))
    (job,) = config.jobs
    assert (job.name, job.kind, job.schedule, job.model) == (
        "retrain-churn",
        "retrain",
        "0 3 * * 1",
        "churn",
    )
    assert isinstance(job.params, RetrainParams)
    assert SchedulerConfig.from_project(_project()).jobs == []


def test_a_bad_schedule_and_a_clash_name_the_table() -> None:
    with pytest.raises(InvalidInput, match=r"\[models\.churn\] retrain\.schedule: must be a cron"):
        SchedulerConfig.from_project(_project(schedule="weekly"))
    clash = ProjectConfig.model_validate(
        {
            "models": {
                "churn": {
                    "retrain": {
                        "entry": "m:f",
                        "target": "y",
                        "data": "x.csv",
                        "schedule": "0 3 * * *",
                    }
                }
            },
            "jobs": [{"name": "retrain-churn", "kind": "gc", "schedule": "0 * * * *"}],
        }
    )
    with pytest.raises(InvalidInput, match="declares the job 'retrain-churn'"):
        SchedulerConfig.from_project(clash)


def test_a_retrain_job_runs_and_reports_a_running_one(
    make_scheduler: MakeScheduler, store: Store, tmp_path: Path
) -> None:
    write_project(tmp_path)
    labelled(400, 1).to_csv(tmp_path / "rows.csv", index=False)
    register_champion(store)
    scheduler = make_scheduler(
        RETRAIN.replace('data = "rows.csv"', 'data = "rows.csv"\nschedule = "0 3 * * *"')
    )
    job = scheduler.config.job("retrain-churn")

    run = scheduler.run_job(job)

    assert run.status == "succeeded", run.message
    assert run.message == "churn v2 registered, passed its gates; waiting for approval"
    assert run.details["version"] == 2 and run.details["started"] is True
    (record,) = RetrainRuns(store).history("churn")
    assert record.trigger == "schedule:retrain-churn" and record.started_by == "scheduler"

    hold_running(store, by="dave")
    again = scheduler.run_job(job)
    assert again.status == "succeeded" and again.message.startswith("not started: A retraining")
    assert again.details["started"] is False


def test_a_monitor_job_retrains_on_drift(
    make_scheduler: MakeScheduler, store: Store, tmp_path: Path
) -> None:
    write_project(tmp_path)
    labelled(400, 1).to_csv(tmp_path / "rows.csv", index=False)
    register_champion(store)
    shifted = churn_frame(2_000, 2)
    shifted["age"] += 8.0
    log_predictions(tmp_path / "predictions", shifted)
    scheduler = make_scheduler(
        RETRAIN
        + "on_drift = true\n"
        + '\n[[alerts]]\nname = "psi"\nmetric = "psi"\nthreshold = 0.1\n'
        + '\n[[jobs]]\nname = "churn-drift"\nkind = "monitor"\nschedule = "0 * * * *"\n'
        + 'model = "churn:1"\nwindow = "1h"\n'
    )

    run = scheduler.run_job(scheduler.config.job("churn-drift"))

    assert run.status == "succeeded", run.message
    (retrain,) = run.details["retrains"]
    assert retrain["status"] == "started" and retrain["version"] == 2, json.dumps(retrain)
    assert "retrained churn: v2" in run.message
    (record,) = RetrainRuns(store).history("churn")
    assert record.trigger == f"alert:{retrain['alert']}"
