"""The CLI end to end: real subcommands, exit codes, JSON output, and clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import joblib
import pytest

from cli_support import cli, point_cli_at
from gates_off import GATES_OFF_TOML


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Point the CLI at a fresh store; returns a function switching the acting user."""
    return point_cli_at(monkeypatch, db_url, tmp_path, toml=GATES_OFF_TOML)


@pytest.fixture
def files(tmp_path: Path, fitted_pipeline, training_data) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    X, y, Xe, ye = training_data
    paths = {
        "model": tmp_path / "model.joblib",
        "train": tmp_path / "train.parquet",
        "eval": tmp_path / "eval.csv",
    }
    joblib.dump(fitted_pipeline, paths["model"])
    X.assign(churn=y).to_parquet(paths["train"])
    Xe.assign(churn=ye).to_csv(paths["eval"], index=False)
    return paths


def test_the_whole_registry_flow(env, capsys, files) -> None:  # type: ignore[no-untyped-def]
    assert cli(capsys, "init")[0] == 0
    assert cli(capsys, "users", "add", "bob", "--role", "approver")[0] == 0
    env("alice")
    code, out, _ = cli(
        capsys,
        "register",
        str(files["model"]),
        "--name",
        "churn",
        "--train",
        str(files["train"]),
        "--target",
        "churn",
        "--eval",
        str(files["eval"]),
        "--json",
    )
    assert code == 0 and json.loads(out)["version"] == 1
    cli(
        capsys,
        "register",
        str(files["model"]),
        "--name",
        "churn",
        "--train",
        str(files["train"]),
        "--target",
        "churn",
    )
    code, _, err = cli(capsys, "promote", "churn", "1")
    assert code == 1 and "needs an approval" in err
    code, _, err = cli(capsys, "approve", "churn", "1", "--reason", "mine")
    assert code == 1 and "only users with the approver role" in err
    env("bob")
    assert cli(capsys, "approve", "churn", "1", "--reason", "AUC ok")[0] == 0
    assert cli(capsys, "approve", "churn", "2", "--reason", "AUC ok")[0] == 0
    env("alice")
    assert cli(capsys, "promote", "churn", "1")[0] == 0
    assert cli(capsys, "promote", "churn", "2")[0] == 0
    code, out, _ = cli(capsys, "rollback", "churn")
    assert code == 0 and "v2 → v1" in out
    code, out, _ = cli(capsys, "models", "churn", "--json")
    stages = {r["version"]: r["stage"] for r in json.loads(out)}
    assert stages == {1: "production", 2: "archived"}
    code, out, _ = cli(capsys, "models", "--json")
    assert json.loads(out)[0]["production"] == 1
    code, out, _ = cli(capsys, "audit", "log", "--json", "--subject", "model:churn")
    actions = [e["action"] for e in json.loads(out)]
    assert actions[0] == "version.rolled_back" and "version.approved" in actions
    code, out, _ = cli(capsys, "audit", "verify")
    assert code == 0 and "chain intact" in out
    code, out, _ = cli(capsys, "runs", "--json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = cli(capsys, "users", "list", "--json")
    assert {u["name"]: u["role"] for u in json.loads(out)} == {"admin": "admin", "bob": "approver"}


def test_audit_verify_exits_1_and_names_the_event(env, capsys) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    from shipyard import Settings

    cli(capsys, "users", "add", "bob", "--role", "approver")
    engine = sa.create_engine(Settings().database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET reason = 'forged' WHERE seq = 2"))
    engine.dispose()
    code, _, err = cli(capsys, "audit", "verify")
    assert code == 1 and "#2" in err and "modified" in err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["promote", "nope", "1"], 1, "no model 'nope'"),
        (["promote", "churn", "x"], 2, "Invalid value"),
        (["rollback", "nope"], 1, "no model 'nope'"),
        (["register", "missing.joblib", "--name", "m", "--train", "t.csv"], 2, "No such file"),
        (["users", "add", "bob", "--role", "king"], 2, "Unknown role 'king'"),
        (["frobnicate"], 2, "No such command"),
    ],
)
def test_bad_usage_and_refusals_are_one_line(env, capsys, args, code, message) -> None:  # type: ignore[no-untyped-def]
    got, out, err = cli(capsys, *args)
    assert got == code
    assert message in out + err


def test_register_bad_files(env, capsys, files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    junk = tmp_path / "junk.joblib"
    junk.write_bytes(b"not a pickle")
    code, _, err = cli(capsys, "register", str(junk), "--name", "m", "--train", str(files["train"]))
    assert code == 2 and "Cannot load" in err
    code, _, err = cli(
        capsys,
        "register",
        str(files["model"]),
        "--name",
        "m",
        "--train",
        str(files["train"]),
        "--target",
        "nope",
    )
    assert code == 2 and "has no column 'nope'" in err
    bad_csv = tmp_path / "t.xlsx"
    bad_csv.write_text("x")
    code, _, err = cli(
        capsys, "register", str(files["model"]), "--name", "m", "--train", str(bad_csv)
    )
    assert code == 2 and "neither Parquet" in err
    code, out, _ = cli(capsys, "models", "--json")
    assert json.loads(out) == []


def test_unreachable_database_via_the_console_script(tmp_path: Path) -> None:
    env = {
        "SHIPYARD_HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "SHIPYARD_DB_URL": "postgresql+psycopg://x:pw@127.0.0.1:1/db?connect_timeout=2",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "shipyard", "models"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Cannot reach the database" in proc.stderr and "Traceback" not in proc.stderr
