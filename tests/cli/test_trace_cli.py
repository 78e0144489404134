"""``shipyard audit trace`` and ``shipyard audit served`` against a real store and log."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cli_support import cli, point_cli_at
from gates_off import GATES_OFF_TOML
from shipyard import Client, Settings
from shipyard.predlog import PredictionLog
from trace_support import HTML_INPUT, record, server_id, tracked_churn


@pytest.fixture
def clients(
    monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path
) -> Iterator[dict[str, Client]]:
    """Clients of the store the CLI uses (as its environment says), by user."""
    point_cli_at(monkeypatch, db_url, tmp_path, toml=GATES_OFF_TOML)
    made: dict[str, Client] = {}

    def make(user: str) -> Client:
        if user not in made:
            made[user] = Client(Settings(user=user)).open()
        return made[user]

    make("admin").users.set_role("bob", "approver", actor="admin")
    make("bob")
    yield made
    for c in made.values():
        c.close()


@pytest.fixture
def churn(clients: dict[str, Client], fitted_pipeline: Any, training_data: Any) -> Client:
    def make(user: str) -> Client:
        if user not in clients:
            clients[user] = Client(Settings(user=user)).open()
        return clients[user]

    return tracked_churn(make, clients["bob"], fitted_pipeline, training_data)


def test_trace_prints_the_lineage_and_json(
    churn: Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    pid = server_id(now)
    with PredictionLog(tmp_path / "log") as log:
        log.append([record(pid, now, version=2)])
        log.record_feedback("churn", pid, "stay")
    code, out, _ = cli(capsys, "audit", "trace", pid, "--log-dir", str(tmp_path / "log"))
    assert code == 0
    assert "churn v2" in out and "alice" in out and "C=0.5" in out and "'stay'" in out
    assert churn.registry.get_version("churn", 2).digest in out
    code, out, _ = cli(capsys, "audit", "trace", pid, "--log-dir", str(tmp_path / "log"), "--json")
    data = json.loads(out)
    assert code == 0 and data["version"] == 2 and data["inputs"]["plan"] == HTML_INPUT
    assert data["run"]["params"] == {"C": 0.5} and data["labels"][0]["label"] == "stay"


def test_trace_refuses_unknown_and_malformed_ids(
    clients: dict[str, Client], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = server_id(datetime.now(UTC))
    code, _, err = cli(capsys, "audit", "trace", unknown, "--log-dir", str(tmp_path / "log"))
    assert code == 1 and "No logged prediction has the id" in err
    code, _, err = cli(capsys, "audit", "trace", "../etc/passwd")
    assert code == 2 and "hex digits" in err


def test_served_before_and_after_promotions_and_rollback(
    churn: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    before = datetime.now(UTC).isoformat()
    time.sleep(0.02)
    churn.promote("churn", 1)
    time.sleep(0.02)
    after_v1 = datetime.now(UTC).isoformat()
    churn.promote("churn", 2, reason="better auc")
    time.sleep(0.02)
    after_v2 = datetime.now(UTC).isoformat()
    churn.rollback("churn", reason="v2 misbehaves")
    time.sleep(0.02)
    after_rollback = datetime.now(UTC).isoformat()

    code, out, _ = cli(capsys, "audit", "served", "churn", "--at", before)
    assert code == 0 and "Nothing was served as production of churn" in out
    code, out, _ = cli(capsys, "audit", "served", "churn", "--at", after_v1, "--json")
    assert code == 0 and json.loads(out)["version"] == 1
    code, out, _ = cli(capsys, "audit", "served", "churn", "--at", after_v2)
    assert "production of churn was v2" in out and "Why: better auc" in out
    code, out, _ = cli(capsys, "audit", "served", "churn", "--at", after_rollback, "--json")
    data = json.loads(out)
    assert (data["version"], data["action"], data["reason"]) == (1, "rollback", "v2 misbehaves")


def test_served_refuses_a_bad_time_with_an_example(
    clients: dict[str, Client], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "audit", "served", "churn", "--at", "yesterday noon")
    assert code == 2 and "2026-12-01T10:00" in err
    code, _, err = cli(capsys, "audit", "served", "nope", "--at", "2026-12-01T10:00")
    assert code == 1 and "no model 'nope'" in err
