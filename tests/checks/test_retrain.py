"""``retrain``: a candidate trained by the project's own entry point, as a tracked run, from
files, SQL or the feedback-joined prediction log; registered with its eval rows, validated
against production, the approvers notified; one retraining at a time; bad input refused in
one sentence with the row failed and nothing registered."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from churn_data import log_predictions
from retrain_project import hold_running, labelled, project, register_champion, write_project
from shipyard.alerting import Alerts
from shipyard.audit import list_events
from shipyard.checks import RetrainRequest, RetrainRuns, retrain
from shipyard.errors import InvalidInput, InvalidTransition
from shipyard.registry import Registry
from shipyard.store import Store
from shipyard.store.tables import RetrainRun
from shipyard.tracking import Tracker

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)


def _git(folder: Path) -> str:
    def run(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(folder), *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    run("init", "-q")
    run("-c", "user.email=t@example.com", "-c", "user.name=t", "add", ".")
    run("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "train")
    return run("rev-parse", "HEAD")


def _retrain_events(store: Store) -> list[str]:
    with store.read() as session:
        events = list_events(session, limit=1000)
    return [e.action for e in reversed(events) if e.action.startswith("retrain.")]


def _request(tmp_path: Path, folder: Path, **retrain_table: Any) -> RetrainRequest:
    return RetrainRequest(
        "churn",
        actor="carol",
        project=project(**retrain_table),
        log_root=tmp_path / "log",
        folder=folder,
        report_dir=tmp_path / "reports",
    )


def test_from_a_parquet_glob_with_lineage_and_eval_rows(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "project"
    write_project(folder)
    (folder / "data").mkdir()
    labelled(600, 1).to_parquet(folder / "data" / "part-1.parquet")
    labelled(400, 2).to_parquet(folder / "data" / "part-2.parquet")
    commit = _git(folder)
    register_champion(store, promote=True)
    lines: list[str] = []

    result = retrain(
        store, _request(tmp_path, folder, data="data/*.parquet"), progress=lines.append
    )

    assert (result.version, result.champion, result.train_rows, result.eval_rows) == (
        2,
        1,
        750,
        250,
    )
    assert result.source == f"data:{folder / 'data' / '*.parquet'} (2 files)"
    assert result.record.status == "succeeded" and result.record.trigger == "manual"
    assert result.record.run_id == result.run_id and result.record.version == 2
    keys = {"name", "passed", "value", "limit"}
    assert result.gates and all(keys <= set(gate) for gate in result.gates)
    assert result.report_path == tmp_path / "reports" / "churn-v2-validation.html"
    assert result.report_path.is_file()
    assert any(line.startswith("Training with train_churn:train") for line in lines)
    # The entry point got the training rows as one frame, target included.
    assert sys.modules["train_churn"].SEEN == [["age", "income", "plan", "churned"]]

    run = Tracker(store).get(result.run_id)
    assert run.status == "finished" and run.user == "carol" and run.git["commit"] == commit
    assert run.params["trigger"] == "manual" and run.params["source"] == result.source
    datasets = {d.name: d for d in Tracker(store).datasets(result.run_id)}
    assert (datasets["train"].n_rows, datasets["eval"].n_rows) == (750, 250)
    version = Registry(store).get_version("churn", 2)
    assert version.run_id == result.run_id and version.author == "carol"
    archive = Registry(store).open_archive("churn", 2)
    assert len(archive.eval_rows()) == 250
    assert {d["name"] for d in archive.manifest.lineage.datasets} == {"train", "eval"}
    assert Registry(store).resolve("churn@production").version == 1  # nothing swapped

    actions = _retrain_events(store)
    assert actions == ["retrain.started", "retrain.finished"]
    (history,) = RetrainRuns(store).history("churn")
    assert history.status == "succeeded" and history.passed is result.passed
    assert "waiting for approval" in history.message


def test_from_the_feedback_joined_log(store: Store, tmp_path: Path) -> None:
    from shipyard.predlog import PredictionLog

    folder = tmp_path / "project"
    write_project(folder)
    register_champion(store)
    rows = labelled(800, 3)
    ids = log_predictions(tmp_path / "log", rows.drop(columns=["churned"]))
    log = PredictionLog(tmp_path / "log").open()
    answered = 600  # labels arrived for the first 600 predictions only
    labels = pd.DataFrame({"prediction_id": ids[:answered], "label": rows["churned"][:answered]})
    assert log.record_feedback_frame("churn", labels).matched == answered
    log.close()

    result = retrain(store, _request(tmp_path, folder, source="feedback", window="1d"))

    assert result.train_rows + result.eval_rows == answered
    assert result.source.startswith("feedback:") and result.version == 2
    datasets = {d.name: d for d in Tracker(store).datasets(result.run_id)}
    assert datasets["train"].n_rows == result.train_rows
    assert sys.modules["train_churn"].SEEN == [["age", "income", "plan", "churned"]]


def test_from_sql_on_a_sqlite_file(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "project"
    write_project(folder)
    register_champion(store)
    database = tmp_path / "warehouse.db"
    engine = sa.create_engine(f"sqlite:///{database}")
    labelled(500, 4).to_sql("customers", engine, index=False)
    engine.dispose()

    result = retrain(
        store,
        _request(
            tmp_path,
            folder,
            sql="SELECT age, income, plan, churned FROM customers WHERE age > 0",
            url=f"sqlite:///{database}",
        ),
    )

    assert result.train_rows + result.eval_rows == 500
    assert result.source == f"sql:sqlite:///{database}"


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_not_started_twice(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "project"
    write_project(folder)
    labelled(300, 5).to_csv(folder / "rows.csv", index=False)
    register_champion(store)
    host = socket.gethostname()
    hold_running(store, by="scheduler", trigger="schedule:nightly")
    request = _request(tmp_path, folder, data="rows.csv")

    with pytest.raises(InvalidTransition) as refused:
        retrain(store, request)
    message = refused.value.message
    assert "already running" in message and "started by scheduler" in message
    assert "\n" not in message
    assert [r.status for r in RetrainRuns(store).history("churn")] == ["running"]

    with store.write() as session:  # the owner died: a stale row
        row = session.scalars(sa.select(RetrainRun)).one()
        row.owner = f"{host}:{_dead_pid()}"
    result = retrain(store, request)
    assert result.version == 2
    assert any("is gone: closed as failed" in w for w in result.warnings)
    stale, fresh = sorted(RetrainRuns(store).history("churn"), key=lambda r: r.id)
    assert stale.status == "failed" and "is gone" in stale.message
    assert fresh.status == "succeeded" and fresh.details["closed_stale"] == [stale.id]
    assert fresh.details["source"] == result.source and fresh.details["rows"] == 300


BAD: dict[str, tuple[dict[str, Any], str]] = {
    "entry does not import": (
        {"entry": "no_such_module:train", "data": "rows.csv"},
        "The entry point 'no_such_module:train' of [models.churn.retrain] does not import "
        "(ModuleNotFoundError",
    ),
    "entry with a syntax error": (
        {"entry": "broken_syntax:train", "data": "rows.csv"},
        "does not import (SyntaxError",
    ),
    "missing function": (
        {"entry": "train_churn:fit", "data": "rows.csv"},
        "has no function 'fit' in module train_churn",
    ),
    "unfitted model": (
        {"entry": "train_churn:unfitted", "data": "rows.csv"},
        "returned an unfitted model",
    ),
    "training code fails": (
        {"entry": "train_churn:broken", "data": "rows.csv"},
        "failed: RuntimeError: the GPU is on fire",
    ),
    "empty data": ({"data": "empty.csv"}, "has no labelled rows"),
    "glob matching nothing": ({"data": "nothing/*.parquet"}, "matches no file"),
    "missing target": ({"data": "unlabelled.csv"}, "has no target column 'churned'"),
    "bad sql": (
        {"sql": "SELECT * FROM no_such_table", "url": "sqlite:///{warehouse}"},
        "The SQL of [models.churn.retrain] failed",
    ),
    "unreachable database": (
        {"sql": "SELECT 1", "url": "postgresql+psycopg://nobody@127.0.0.1:9/none"},
        "The SQL of [models.churn.retrain] failed",
    ),
    "empty feedback": ({"source": "feedback"}, "has no labelled rows"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_sentence_and_registers_nothing(
    case: str, store: Store, tmp_path: Path
) -> None:
    folder = tmp_path / "project"
    write_project(folder)
    (folder / "broken_syntax.py").write_text("def train(frame):\n    return (\n", "utf-8")
    labelled(200, 6).to_csv(folder / "rows.csv", index=False)
    labelled(5, 6).head(0).to_csv(folder / "empty.csv", index=False)
    labelled(50, 6).drop(columns=["churned"]).to_csv(folder / "unlabelled.csv", index=False)
    warehouse = tmp_path / "warehouse.db"
    sa.create_engine(f"sqlite:///{warehouse}").dispose()
    register_champion(store)
    table, expected = BAD[case]
    table = {k: v.format(warehouse=warehouse) for k, v in table.items()}

    with pytest.raises(InvalidInput) as bad:
        retrain(store, _request(tmp_path, folder, **table))

    message = bad.value.message
    assert expected in message and "\n" not in message
    (row,) = RetrainRuns(store).history("churn")
    assert row.status == "failed" and row.message == message and row.version is None
    assert [v.version.version for v in Registry(store).versions("churn")] == [1]
    actions = _retrain_events(store)
    assert actions == ["retrain.started", "retrain.failed"]


def test_a_model_without_a_retrain_table(store: Store, tmp_path: Path) -> None:
    from shipyard.config import ProjectConfig

    register_champion(store)
    request = RetrainRequest("churn", actor="carol", project=ProjectConfig(), log_root=tmp_path)
    with pytest.raises(InvalidInput, match=r"no \[models.churn.retrain\] table"):
        retrain(store, request)
    assert RetrainRuns(store).history("churn") == []


def test_the_approvers_hear_of_the_candidate(
    store: Store,
    tmp_path: Path,
    http_server: Callable[..., Any],
    smtp_server: Callable[..., tuple[int, Any]],
) -> None:
    folder = tmp_path / "project"
    write_project(folder)
    labelled(400, 7).to_csv(folder / "rows.csv", index=False)
    register_champion(store, promote=True)
    hook, broken = http_server(), http_server(500)
    port, mailbox = smtp_server()
    channels = {
        "team": {"type": "webhook", "url": hook.url},
        "approvers": {
            "type": "email",
            "host": "127.0.0.1",
            "port": port,
            "from": "shipyard@example.com",
            "to": ["bob@example.com"],
        },
        "flaky": {"type": "webhook", "url": broken.url, "attempts": 1},
    }
    request = RetrainRequest(
        "churn",
        actor="carol",
        project=project(
            channel_tables=channels, data="rows.csv", channels=["team", "approvers", "flaky"]
        ),
        log_root=tmp_path / "log",
        folder=folder,
        report_dir=tmp_path / "reports",
    )

    result = retrain(store, request)

    assert result.notified == ["team", "approvers"]
    assert any("'flaky' did not deliver" in w for w in result.warnings)
    assert result.record.status == "succeeded"  # a channel failure never fails it
    assert result.record.details["warnings"] == result.warnings
    (received,) = hook.requests
    text = received.body["text"]
    assert "churn v2" in text and "waiting for approval" in text
    assert "Champion: v1" in text and "Gate metric:" in text and "vs limit" in text
    assert str(result.report_path) in text
    assert 'shipyard approve churn 2 --reason "..."' in text
    (mail,) = mailbox.envelopes
    assert mail.rcpt_tos == ["bob@example.com"] and b"waiting for approval" in mail.content
    (stored,) = [a for a in Alerts(store).list(model="churn") if a.rule == "retrain:churn"]
    assert stored.version == 2 and stored.status == "failed"  # one channel of three failed


def test_one_start_wins_a_race(store: Store) -> None:
    register_champion(store)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def start() -> None:
        barrier.wait()
        try:
            RetrainRuns(store).start("churn", trigger="manual", actor="carol")
            outcomes.append("started")
        except InvalidTransition:
            outcomes.append("refused")

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "started"]
    assert [r.status for r in RetrainRuns(store).history("churn")] == ["running"]
