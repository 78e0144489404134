"""``shipyard retrain NAME`` and ``shipyard retrain history NAME``: exit 0 when the candidate
passed its gates, 1 when it failed them (registered all the same) or a retraining is running,
2 on bad input in one line; ``monitor run`` starts the retraining a drift alert asks for."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from churn_data import log_predictions
from retrain_project import hold_running, labelled, register_champion, write_project
from shipyard.checks import RetrainRuns
from shipyard.cli import run_cli
from shipyard.registry import Registry
from shipyard.store import Store

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

RETRAIN = """
[gates]
require = false

[models.churn.retrain]
entry = "train_churn:train"
target = "churned"
data = "data/*.csv"
"""


@pytest.fixture
def home(store: Store, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the entry module, its data and shipyard.toml; churn v1."""
    folder = tmp_path / "project"
    write_project(folder)
    (folder / "data").mkdir()
    labelled(300, 1).to_csv(folder / "data" / "a.csv", index=False)
    labelled(300, 2).to_csv(folder / "data" / "b.csv", index=False)
    (folder / "shipyard.toml").write_text(RETRAIN, encoding="utf-8")
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_DB_URL", db_url)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("SHIPYARD_CONFIG", str(folder / "shipyard.toml"))
    monkeypatch.setenv("SHIPYARD_USER", "carol")
    register_champion(store)
    return folder


def test_a_candidate_that_passes(home: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run_cli(["retrain", "churn"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Retraining #1 of churn (manual)" in out and "450 training and 150 eval rows" in out
    assert "Gates of churn v2 against production" in out
    report = tmp_path / "home" / "reports" / "churn-v2-validation.html"
    assert report.is_file() and "churn-v2-validation.html" in out
    assert 'Waiting for approval: shipyard approve churn 2 --reason "..."' in out

    assert run_cli(["retrain", "history", "churn", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["status"], row["version"], row["passed"], row["trigger"]) == (
        "succeeded",
        2,
        True,
        "manual",
    )
    assert run_cli(["retrain", "history", "churn"]) == 0
    assert "succeeded" in capsys.readouterr().out


def test_a_candidate_that_fails_its_gates_is_registered(home: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    toml = home / "shipyard.toml"
    toml.write_text(
        RETRAIN + '\n[[models.churn.gates.metrics]]\nmetric = "roc_auc"\nmin = 0.999\n',
        encoding="utf-8",
    )
    assert run_cli(["retrain", "churn", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["version"] == 2 and result["passed"] is False
    assert any(not gate["passed"] for gate in result["gates"])
    assert result["waiting_for_approval"] == 'shipyard approve churn 2 --reason "..."'


def test_bad_input_exits_2_in_one_line(home: Path, store: Store, capsys) -> None:  # type: ignore[no-untyped-def]
    (home / "shipyard.toml").write_text(
        RETRAIN.replace("train_churn:train", "train_churn:unfitted"), encoding="utf-8"
    )
    assert run_cli(["retrain", "churn"]) == 2
    err = capsys.readouterr().err
    assert "returned an unfitted model" in err and len(err.strip().splitlines()) == 1
    (row,) = RetrainRuns(store).history("churn")
    assert row.status == "failed"
    assert [info.version.version for info in Registry(store).versions("churn")] == [1]

    (home / "shipyard.toml").write_text(RETRAIN.replace("data/*.csv", "none/*.csv"), "utf-8")
    assert run_cli(["retrain", "churn"]) == 2
    assert "matches no file" in capsys.readouterr().err


def test_a_running_retraining_is_not_started_twice(home: Path, store: Store, capsys) -> None:  # type: ignore[no-untyped-def]
    hold_running(store, by="dave")
    assert run_cli(["retrain", "churn"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "already running" in err and "started by dave" in err


def test_history_of_every_model_and_of_an_unknown_one(home: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run_cli(["retrain", "history"]) == 0
    assert "Retrainings" in capsys.readouterr().out
    assert run_cli(["retrain", "history", "chrun"]) == 1
    assert "churn" in capsys.readouterr().err


def test_drift_alert_retrains_from_the_feedback_joined_log(
    home: Path, store: Store, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    """The loop: drifted traffic is logged, labels arrive ('shipyard feedback'), 'monitor run'
    raises a drift alert whose rule says action = "retrain", and the retraining trains on the
    logged inputs joined with their labels."""
    (home / "shipyard.toml").write_text(
        RETRAIN.replace('data = "data/*.csv"', 'source = "feedback"\nwindow = "1d"')
        + '\n[[alerts]]\nname = "age-drift"\nmetric = "drift"\nfeature = "age"\n'
        'action = "retrain"\n',
        encoding="utf-8",
    )
    shifted = labelled(2_000, 9)
    shifted["age"] += 8.0
    ids = log_predictions(tmp_path / "home" / "predictions", shifted.drop(columns=["churned"]))
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"prediction_id": ids[:1_500], "label": shifted["churned"][:1_500]}).to_csv(
        labels, index=False
    )
    assert run_cli(["feedback", "churn", str(labels)]) == 0
    capsys.readouterr()

    assert run_cli(["monitor", "run", "churn:1", "--window", "1h", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    (retrain,) = out["retrains"]
    assert retrain["status"] == "started" and retrain["version"] == 2
    (row,) = RetrainRuns(store).history("churn")
    assert row.trigger == f"alert:{retrain['alert']}" and row.status == "succeeded"
    assert row.details["rows"] == 1_500 and row.details["source"].startswith("feedback:")
    assert datetime.now(UTC) - row.started_at.replace(tzinfo=UTC) < timedelta(minutes=5)
    report = tmp_path / "home" / "reports" / "churn-v2-validation.html"
    assert report.is_file()
