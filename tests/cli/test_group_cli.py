"""``shipyard group create|list|show|delete``: exit codes and one-sentence errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_support import cli, point_cli_at
from gates_off import GATES_OFF_TOML, NO_GATES
from group_models import register_group_models
from shipyard.registry import Registry
from shipyard.store import Store

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)


@pytest.fixture
def env(
    store: Store, db_url: str, tmp_path: Path, monkeypatch, fitted_pipeline, training_data, approver
):  # type: ignore[no-untyped-def]
    registry = Registry(store, NO_GATES)
    register_group_models(registry, approver, fitted_pipeline, training_data)
    as_user = point_cli_at(monkeypatch, db_url, tmp_path, toml=GATES_OFF_TOML)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "artifacts"))  # the store's
    as_user("alice")
    return registry


def test_groups_from_the_command_line(env, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(
        capsys, "group", "create", "retention",
        "--member", "churn@production", "--member", "value@production", "--combine", "chain",
    )  # fmt: skip
    assert code == 0 and "chain of churn@production -> value@production" in out
    code, out, _ = cli(
        capsys, "group", "create", "blend", "--member", "churn@production",
        "--member", "churn_tree@production", "--combine", "weighted", "--weights", "0.7,0.3",
    )  # fmt: skip
    assert code == 0 and "x0.7" in out
    code, out, _ = cli(capsys, "group", "list", "--json")
    assert code == 0 and [g["name"] for g in json.loads(out)] == ["blend", "retention"]
    code, out, _ = cli(capsys, "group", "show", "retention", "--json")
    assert code == 0 and json.loads(out)["versions"] == {
        "churn@production": 1,
        "value@production": 1,
    }
    code, out, _ = cli(capsys, "group", "delete", "blend")
    assert code == 0 and "deleted" in out
    code, out, _ = cli(capsys, "group", "list")
    assert code == 0 and "blend" not in out and "retention" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--member", "churn@production", "--combine", "median"], 2, "Unknown combine"),
        (
            ["--member", "churn@production", "--member", "churn_tree@production",
             "--combine", "weighted", "--weights", "a,b"],
            2,
            "numbers separated by commas",
        ),
        (
            ["--member", "value@production", "--member", "churn@production", "--combine",
             "chain"],
            2,
            "cannot follow value",
        ),
        (["--member", "nobody@production", "--combine", "mean"], 2, "nobody@production"),
    ],
)  # fmt: skip
def test_bad_groups_exit_with_one_sentence(env, capsys, args, code, message) -> None:  # type: ignore[no-untyped-def]
    got, out, err = cli(capsys, "group", "create", "g", *args)
    assert got == code and message in out + err
    assert cli(capsys, "group", "show", "g")[0] == 1


def test_serve_refuses_snapshots_with_several_workers(env, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli(capsys, "serve", "--snapshot-every", "100", "--workers", "2")
    assert code == 2 and "--snapshot-every learns in one process" in out + err
