"""``shipyard request-approval`` and ``shipyard reject``: real commands on SQLite and
PostgreSQL, exit codes as the README's table says, nothing changed on a refusal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cli_support import cli, point_cli_at
from gates_off import GATES_OFF_TOML
from shipyard import Client, Settings


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    return point_cli_at(monkeypatch, db_url, tmp_path, toml=GATES_OFF_TOML)


@pytest.fixture
def registered(env, capsys, fitted_pipeline, training_data) -> Callable[[str], None]:  # type: ignore[no-untyped-def]
    """churn v1 by alice; bob is an approver, vera a viewer."""
    assert cli(capsys, "users", "add", "bob", "--role", "approver")[0] == 0
    assert cli(capsys, "users", "add", "vera", "--role", "viewer")[0] == 0
    X, y, Xe, ye = training_data
    alice = Client(Settings(user="alice")).open()
    try:
        alice.register(
            fitted_pipeline, name="churn", X_train=X, y_train=y, X_eval=Xe, y_eval=ye, onnx=False
        )
    finally:
        alice.close()
    return env  # type: ignore[no-any-return]


def _requests() -> list[tuple[str, str, str]]:
    client = Client(Settings(user="admin")).open()
    try:
        return [(r.status, r.requested_by, r.reason) for r in client.registry.approval_requests()]
    finally:
        client.close()


def test_request_then_reject(registered, capsys) -> None:  # type: ignore[no-untyped-def]
    env = registered
    env("alice")
    code, out, _ = cli(capsys, "request-approval", "churn", "1", "--comment", "AUC +2")
    assert code == 0 and "alice asked for a review of churn v1" in out
    code, _, err = cli(capsys, "request-approval", "churn", "1")
    assert code == 1 and "already has an open approval request" in err
    env("bob")
    code, out, _ = cli(capsys, "reject", "churn", "1", "--reason", "fairness gap")
    assert code == 0 and "bob rejected churn v1" in out
    assert _requests() == [("rejected", "alice", "fairness gap")]


def test_refusals_change_nothing(registered, capsys) -> None:  # type: ignore[no-untyped-def]
    env = registered
    env("vera")
    code, _, err = cli(capsys, "request-approval", "churn", "1")
    assert code == 1 and "viewer role" in err
    env("alice")
    code, _, err = cli(capsys, "reject", "churn", "1", "--reason", "mine")
    assert code == 1 and "only users with the approver role" in err
    env("bob")
    code, _, err = cli(capsys, "reject", "churn", "1", "--reason", " ")
    assert code == 2 and "reason" in err
    code, _, err = cli(capsys, "reject", "churn", "9", "--reason", "x")
    assert code == 1 and "no version 9" in err
    code, _, _ = cli(capsys, "reject", "churn", "1")
    assert code == 2  # --reason is required
    assert _requests() == []
