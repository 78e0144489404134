"""``shipyard validate``, ``waive``, ``models create|set`` and gated ``promote`` from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cli_support import cli, point_cli_at
from shipyard import Client, Settings
from shipyard.config import ProjectConfig
from shipyard.registry import Registry
from shipyard.store import Store

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A fresh store; shipyard.toml in the working folder; returns a user switcher."""
    return point_cli_at(monkeypatch, db_url, tmp_path, toml=None)


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


def test_gate_names_are_printed_as_they_are(
    two_versions, capsys, db_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A sensitive feature may be called ``income[k]``: its gate is printed, and waived, by
    that name (not read as console markup)."""
    from shipyard.registry import Gates

    store = Store(db_url, str(tmp_path / "home" / "artifacts"), creator="admin").open()
    try:
        digest = Registry(store).get_version("churn", 2).digest
        failed = ["fairness:income[k]"]
        Gates(store).record("churn", 2, digest=digest, passed=False, failed=failed, champion=1,
                            data_source="rows", report={"gates": []}, actor="alice")  # fmt: skip
    finally:
        store.close()
    code, out, _ = cli(capsys, "validate", "churn", "2", "--show")
    assert "Failed: fairness:income[k]." in out
    two_versions("bob")
    code, out, _ = cli(capsys, "waive", "churn", "2", "fairness:income[k]", "--reason", "ok")
    assert code == 0 and "bob waived gate fairness:income[k] of churn v2." in out


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
    assert code == 1 and "Model 'churn' has no version 9; its versions are 1 to 2." in err


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


# -- shipyard validate, run for real ---------------------------------------------------------------


@pytest.fixture
def registered(env, db_url: str, tmp_path: Path, fitted_pipeline, training_data):  # type: ignore[no-untyped-def]
    """churn v1 and v2 (the same pipeline, eval rows kept) by alice, approved by bob, v1 in
    production; the eval rows with their label ``churned`` in fresh.parquet and fresh.csv."""
    from gates_off import NO_GATES

    store = Store(db_url, str(tmp_path / "home" / "artifacts"), creator="admin").open()
    try:
        admin, alice, bob = (
            Client(Settings(user=u), store=store, project=NO_GATES).open()
            for u in ("admin", "alice", "bob")
        )
        admin.users.set_role("bob", "approver", actor="admin")
        X, y, Xe, ye = training_data
        for version in (1, 2):
            alice.register(
                fitted_pipeline,
                name="churn",
                X_train=X,
                y_train=y,
                X_eval=Xe,
                y_eval=ye,
                onnx=False,
            )
            bob.approve("churn", version, reason="fine")
        alice.promote("churn", 1)
    finally:
        store.close()
    rows = Xe.assign(churned=ye.to_numpy())
    rows.to_parquet(tmp_path / "fresh.parquet")
    rows.to_csv(tmp_path / "fresh.csv", index=False)
    env("alice")
    return env


def nothing_stored(capsys: pytest.CaptureFixture[str]) -> None:
    """No gate record for churn v2 and no validation event in the audit log."""
    code, _, err = cli(capsys, "validate", "churn", "2", "--show")
    assert code == 1 and "churn v2 has not been validated" in err
    code, out, _ = cli(capsys, "audit", "log", "--json")
    actions = {e["action"] for e in json.loads(out)}
    assert not actions & {"version.validated", "schema.changed"}, actions


def test_validate_json_exit_codes_and_the_stored_record(registered, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli(capsys, "validate", "churn", "2", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["passed"] is True and document["failed"] == []
    assert document["data_source"].startswith("the candidate's own eval rows (150 rows")
    names = [g["name"] for g in document["gates"]]
    assert names[:2] == ["metric:roc_auc", "slices"] and "serving_cost" in names
    for gate in document["gates"]:
        assert {"name", "passed", "value", "limit", "detail"} <= set(gate), gate
        assert isinstance(gate["passed"], bool) and gate["detail"]
    # A failing limit: exit 1, the gate named, and a second record.
    (tmp_path / "shipyard.toml").write_text(
        '[[models.churn.gates.metrics]]\nmetric = "roc_auc"\nmin = 0.99\n'
    )
    code, out, _ = cli(capsys, "validate", "churn", "2", "--data", str(tmp_path / "fresh.csv"),
                       "--target", "churned")  # fmt: skip
    assert code == 1
    assert "Failed: metric:roc_auc" in out and "shipyard waive churn 2 GATE" in out
    # Rich folds a long path across lines: compare without any whitespace.
    said = "".join(out.split())
    assert "".join(f"Rows: the file {tmp_path / 'fresh.csv'} (150 rows)".split()) in said
    code, out, _ = cli(capsys, "validate", "churn", "2", "--show", "--json")
    shown = json.loads(out)
    assert shown["passed"] is False and shown["failed"] == ["metric:roc_auc"]
    assert shown["record"] == document["record"] + 1
    code, out, _ = cli(capsys, "audit", "log", "--json")
    validated = [e for e in json.loads(out) if e["action"] == "version.validated"]
    assert [e["details"]["record"] for e in validated] == [shown["record"], document["record"]]
    assert {e["details"]["digest"] for e in validated} == {document["digest"]}
    assert [e["details"]["passed"] for e in validated] == [False, True]
    # The failed record blocks the promotion, naming the gate.
    code, _, err = cli(capsys, "promote", "churn", "2")
    assert code == 1 and "metric:roc_auc" in err


def test_validate_writes_the_report(registered, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report = tmp_path / "v2.html"
    code, out, _ = cli(capsys, "validate", "churn", "2", "--data", str(tmp_path / "fresh.parquet"),
                       "--target", "churned", "--report", str(report))  # fmt: skip
    assert code == 0 and report.is_file()
    assert f"Report: {report}" in " ".join(out.split())
    page = report.read_text(encoding="utf-8")
    assert "<script src=" not in page and "churn v2" in page and "Plotly.newPlot(" in page
    assert "every gate passed" in page


def bad_input_cases(tmp_path: Path) -> list[tuple[list[str], str, int, str]]:
    """(arguments after ``validate churn 2``, shipyard.toml, exit code, part of the message)."""
    fresh, csv = str(tmp_path / "fresh.parquet"), str(tmp_path / "fresh.csv")
    rows = pd.read_parquet(fresh)
    rows.drop(columns="tenure").to_parquet(tmp_path / "no_tenure.parquet")
    rows.assign(churned="maybe").to_csv(tmp_path / "maybe.csv", index=False)
    (tmp_path / "not_a_table.json").write_text("age\n1\n")
    return [
        (["--data", str(tmp_path / "nope.csv"), "--target", "churned"], "", 2, "No such file"),
        (["--data", str(tmp_path / "not_a_table.json"), "--target", "churned"], "", 2,
         "neither Parquet"),
        (["--data", fresh], "", 2, "--data needs --target"),
        (["--target", "churned"], "", 2, "pass --data FILE as well"),
        (["--data", csv, "--target", "label"], "", 2, "There is no column 'label' (the target)"),
        (["--data", str(tmp_path / "no_tenure.parquet"), "--target", "churned"], "", 2,
         "lack the model's column(s) tenure"),
        (["--data", str(tmp_path / "maybe.csv"), "--target", "churned"], "", 2,
         "['maybe'] the model does not know"),
        ([], '[models.churn]\nsensitive = ["sex"]\n', 2, "sensitive feature 'sex' of churn"),
        ([], '[[models.churn.gates.metrics]]\nmetric = "auc"\nmin = 0.5\n', 2,
         "[models.churn] gates.metrics.0.metric: Unknown metric 'auc'. Use one of: accuracy"),
        ([], '[models.churn]\naccept = "roc_auc >> 0.8"\n', 2, "[models.churn] accept"),
        (["--report", str(tmp_path / "missing" / "r.html")], "", 2, "does not exist"),
        (["--report", str(tmp_path)], "", 2, "is a folder"),
        (["--against", "staging"], "", 1, "no 'staging' version"),
    ]  # fmt: skip


def test_bad_input_is_one_sentence_and_stores_nothing(registered, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    toml = tmp_path / "shipyard.toml"
    for args, config, expected, message in bad_input_cases(tmp_path):
        toml.write_text(config)
        code, out, err = cli(capsys, "validate", "churn", "2", *args)
        assert code == expected, (args, config, err)
        assert message in " ".join(err.split()), (args, config, err)
        assert err.startswith("Error: ") and err.count("\n") == 1, err
        assert out.strip() == "", (args, out)
    toml.write_text("")
    nothing_stored(capsys)
    assert not (tmp_path / "missing").exists()


def test_unknown_model_or_version(registered, capsys) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(capsys, "validate", "chrun", "2")
    assert code == 1 and "There is no model 'chrun'. Did you mean 'churn'?" in err
    code, _, err = cli(capsys, "validate", "churn", "7")
    assert code == 1 and "Model 'churn' has no version 7; its versions are 1 to 2." in err
    code, _, err = cli(capsys, "validate", "chrun", "2", "--show")
    assert code == 1 and "Did you mean 'churn'?" in err
    nothing_stored(capsys)
