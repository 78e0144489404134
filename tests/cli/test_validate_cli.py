"""``shipyard validate``, ``waive``, ``models create|set`` and gated ``promote`` from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard import Client, Settings
from shipyard.cli import run_cli
from shipyard.config import ProjectConfig
from shipyard.store import Store


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A fresh store; shipyard.toml in the working folder; returns a user switcher."""
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_DB_URL", db_url)
    monkeypatch.delenv("SHIPYARD_ARTIFACTS", raising=False)
    monkeypatch.setenv("SHIPYARD_CONFIG", str(tmp_path / "shipyard.toml"))

    def as_user(user: str) -> None:
        monkeypatch.setenv("SHIPYARD_USER", user)

    as_user("admin")
    return as_user


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_cli(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def two_versions(env, db_url: str, tmp_path: Path, fitted_pipeline, training_data):  # type: ignore[no-untyped-def]
    """churn v1 and v2 by alice, approved by bob; v1 validated and in production."""
    store = Store(db_url, str(tmp_path / "home" / "artifacts"), creator="admin").open()
    try:
        clients = {
            u: Client(Settings(user=u), store=store, project=ProjectConfig()).open()
            for u in ("admin", "alice", "bob")
        }
        clients["admin"].users.set_role("bob", "approver", actor="admin")
        X, y, Xe, ye = training_data
        for _ in range(2):
            clients["alice"].register(
                fitted_pipeline, name="churn", X_train=X, y_train=y, X_eval=Xe, y_eval=ye
            )
            clients["bob"].approve("churn", _ + 1, reason="fine")
        from shipyard.registry import Gates

        mv = clients["alice"].registry.get_version("churn", 1)
        Gates(store).record(
            "churn",
            1,
            digest=mv.digest,
            passed=True,
            failed=[],
            champion=None,
            data_source="test rows",
            report={"passed": True, "gates": []},
            actor="alice",
        )
        clients["alice"].promote("churn", 1)
        mv2 = clients["alice"].registry.get_version("churn", 2)
        Gates(store).record(
            "churn",
            2,
            digest=mv2.digest,
            passed=False,
            failed=["fairness:plan"],
            champion=1,
            data_source="test rows",
            report={
                "passed": False,
                "gates": [
                    {
                        "name": "fairness:plan",
                        "passed": False,
                        "value": 0.5,
                        "limit": 0.8,
                        "detail": "parity ratio 0.5 < 0.8",
                        "applicable": True,
                    }
                ],
            },
            actor="alice",
        )
    finally:
        store.close()
    return env


def test_promote_refused_until_the_failed_gate_is_waived(two_versions, capsys) -> None:  # type: ignore[no-untyped-def]
    two_versions("alice")
    code, _, err = cli(capsys, "promote", "churn", "2")
    assert code == 1
    assert "fairness:plan failed" in err and "shipyard validate churn 2 --show" in err
    code, out, _ = cli(capsys, "validate", "churn", "2", "--show")
    assert code == 0 and "fairness:plan" in out and "FAIL" in out
    code, _, err = cli(capsys, "waive", "churn", "2", "fairness:plan", "--reason", "x")
    assert code == 1 and "only users with the approver role" in err
    two_versions("bob")
    code, _, err = cli(capsys, "waive", "churn", "2", "nonsense", "--reason", "x")
    assert code == 2 and "did not fail" in err
    code, out, _ = cli(capsys, "waive", "churn", "2", "fairness:plan", "--reason", "tiny group")
    assert code == 0 and "bob waived gate fairness:plan" in out
    code, out, _ = cli(capsys, "validate", "churn", "2", "--show", "--json")
    shown = json.loads(out)
    assert shown["waivers"] == [
        {"gate": "fairness:plan", "approver": "bob", "reason": "tiny group"}
    ]
    assert shown["passed"] is False and shown["failed"] == ["fairness:plan"]
    two_versions("alice")
    code, out, _ = cli(capsys, "promote", "churn", "2")
    assert code == 0 and "churn@production" in out


def test_force_from_the_cli(two_versions, capsys) -> None:  # type: ignore[no-untyped-def]
    two_versions("alice")
    code, _, err = cli(capsys, "promote", "churn", "2", "--force", "--reason", "now")
    assert code == 1 and "only admins" in err
    two_versions("admin")
    code, _, err = cli(capsys, "promote", "churn", "2", "--force")
    assert code == 2 and "needs a reason" in err
    code, _, err = cli(capsys, "promote", "churn", "2", "--canary", "10", "--force")
    assert code == 2 and "needs a reason" in err
    code, out, _ = cli(capsys, "promote", "churn", "2", "--force", "--reason", "incident 7")
    assert code == 0
    code, out, _ = cli(capsys, "audit", "log", "--json")
    events = json.loads(out)
    assert any(e["action"] == "gates.overridden" and e["reason"] == "incident 7" for e in events)


def test_show_before_any_validation(two_versions, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(capsys, "validate", "churn", "9", "--show")
    assert (code == 1 and "version 9" in err.lower()) or "v9" in err


def test_models_create_and_set(env, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env("alice")
    code, out, _ = cli(
        capsys,
        "models",
        "create",
        "churn",
        "--objective",
        "Keep customers who would leave",
        "--accept",
        "roc_auc >= 0.80",
    )
    assert code == 0 and "Acceptance criterion: roc_auc >= 0.8" in out
    code, _, err = cli(capsys, "models", "create", "churn")
    assert code == 1 and "already exists" in err
    code, _, err = cli(capsys, "models", "create", "other", "--accept", "auc high")
    assert code == 2 and "does not parse" in err
    code, out, _ = cli(capsys, "models", "--json")
    assert [m["name"] for m in json.loads(out)] == ["churn"]  # 'other' was not half-made
    code, _, err = cli(capsys, "models", "set", "churn")
    assert code == 2 and "Nothing to set" in err
    code, out, _ = cli(capsys, "models", "set", "churn", "--accept", "accuracy > 0.7")
    assert code == 0 and "accuracy > 0.7" in out
    code, out, _ = cli(capsys, "models", "churn")
    assert code == 0 and "Keep customers who would leave" in out and "accuracy > 0.7" in out
    # shipyard.toml's [models.churn] wins, and a bad criterion there names table and key
    (tmp_path / "shipyard.toml").write_text('[models.churn]\naccept = "recall >= 0.5"\n')
    code, out, _ = cli(capsys, "models", "churn")
    assert "recall >= 0.5" in out
    (tmp_path / "shipyard.toml").write_text('[models.churn]\naccept = "recall => 0.5"\n')
    code, _, err = cli(capsys, "models", "set", "churn", "--objective", "x")
    assert code == 2 and "[models.churn] accept" in err
