"""``shipyard card``, ``card edit``, ``risks add|list|close`` and ``approve --ack-risk``: real
commands on SQLite and PostgreSQL, exit codes as the README's table says, nothing
half-written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from card_data import WAIVER_REASON, record_validation
from cli_support import cli, point_cli_at
from gates_off import GATES_OFF_TOML
from shipyard import Client, Settings
from shipyard.registry import Gates

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

NOTES = """# Churn v1

## Intended use
Monthly retention campaign.

## Ethical considerations
Age is a feature; reviewed.

## Caveats
Not for <script>alert(1)</script> pricing.
"""


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """A fresh store and a project without required gates; returns a user switch."""
    return point_cli_at(
        monkeypatch,
        db_url,
        tmp_path,
        toml=GATES_OFF_TOML + '\n[models.churn]\nsensitive = ["plan"]\n',
    )


@pytest.fixture
def registered(env, capsys, fitted_pipeline, training_data) -> Callable[[str], None]:  # type: ignore[no-untyped-def]
    """churn v1 by alice; bob is an approver."""
    assert cli(capsys, "users", "add", "bob", "--role", "approver")[0] == 0
    X, y, Xe, ye = training_data
    alice = Client(Settings(user="alice")).open()
    try:
        alice.register(
            fitted_pipeline, name="churn", X_train=X, y_train=y, X_eval=Xe, y_eval=ye, onnx=False
        )
    finally:
        alice.close()
    env("alice")
    return env  # type: ignore[no-any-return]


def test_risks_block_approval_until_acknowledged(registered, capsys) -> None:  # type: ignore[no-untyped-def]
    env = registered
    title = "Trained before the price change"
    code, out, _ = cli(capsys, "risks", "add", "churn", "--risk", title, "--severity", "high",
                       "--owner", "carol", "--mitigation", "Retrain in Q3")  # fmt: skip
    assert code == 0 and "Added risk #1 (high) to churn, all versions." in out
    code, out, _ = cli(capsys, "risks", "add", "churn", "--risk", "Few eval rows", "--severity",
                       "low", "--owner", "dan", "--version", "1", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["version"] == 1 and json.loads(out)["id"] == 2
    code, out, _ = cli(capsys, "risks", "list", "churn", "--json")
    assert [(r["id"], r["severity"], r["owner"]) for r in json.loads(out)] == [
        (1, "high", "carol"), (2, "low", "dan"),
    ]  # fmt: skip

    env("bob")
    code, out, err = cli(capsys, "approve", "churn", "1", "--reason", "AUC ok")
    assert code == 1
    assert "Open risks of churn v1" in out and "Trained before the" in out  # shown first
    assert "#1 'Trained before the price change' (owner carol)" in err
    assert '--reason "..." --ack-risk 1' in err
    env("carol")  # not an approver: refused whatever is acknowledged
    code, _, err = cli(capsys, "approve", "churn", "1", "--reason", "ok", "--ack-risk", "1")
    assert code == 1 and "only users with the approver role" in err
    env("bob")
    code, _, err = cli(capsys, "approve", "churn", "1", "--reason", "ok", "--ack-risk", "7")
    assert code == 1 and "Risk #7 is not an open risk of churn v1 (open: #1, #2)" in err
    code, out, _ = cli(capsys, "approve", "churn", "1", "--reason", "Checked the price effect",
                       "--ack-risk", "1")  # fmt: skip
    assert code == 0 and "bob approved churn v1 (acknowledged risk #1)." in out
    code, out, _ = cli(capsys, "audit", "log", "--json", "--subject", "model:churn")
    approved = next(e for e in json.loads(out) if e["action"] == "version.approved")
    assert approved["details"]["acknowledged_risks"] == [1]

    env("alice")
    code, _, err = cli(capsys, "risks", "close", "churn", "1", "--reason", "done")
    assert code == 1 and "only approvers" in err  # a high risk is closed by an approver
    assert cli(capsys, "risks", "close", "churn", "2", "--reason", "More rows added")[0] == 0
    code, _, err = cli(capsys, "risks", "close", "churn", "2", "--reason", "again")
    assert code == 1 and "Risk #2 of churn is already closed (by alice" in err
    code, _, err = cli(capsys, "risks", "close", "churn", "99", "--reason", "x")
    assert code == 1 and "Model 'churn' has no risk #99" in err
    code, out, _ = cli(capsys, "risks", "list", "churn")
    assert code == 0 and "Few eval rows" not in out and "Trained before" in out
    code, out, _ = cli(capsys, "risks", "list", "churn", "--all", "--json")
    assert [r["status"] for r in json.loads(out)] == ["open", "closed"]
    assert json.loads(out)[1]["resolution"] == "More rows added"


def test_card_edit_and_every_rendering(registered, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store_client = Client(Settings(user="bob")).open()
    try:
        record_validation(store_client.store)
        Gates(store_client.store).waive("churn", 1, "fairness:plan", actor="bob",
                                        reason=WAIVER_REASON)  # fmt: skip
    finally:
        store_client.close()
    cli(capsys, "risks", "add", "churn", "--risk", "PII in features", "--severity", "high",
        "--owner", "carol")  # fmt: skip
    notes = tmp_path / "notes.md"
    notes.write_text(NOTES, encoding="utf-8")
    code, out, _ = cli(capsys, "card", "edit", "churn", "1", "--file", str(notes))
    assert code == 0 and "intended_use, ethical_considerations, caveats" in out
    code, _, _ = cli(capsys, "card", "edit", "churn", "1", "--section", "limitations",
                     "--text", "Trained on 450 rows.")  # fmt: skip
    assert code == 0

    code, md, _ = cli(capsys, "card", "churn", "1")
    assert code == 0 and md.startswith("# Model card: churn v1")
    assert "Monthly retention campaign." in md and "Trained on 450 rows." in md
    assert "| roc_auc | 0.842 | [0.811, 0.869] | 0.8 | 0.83 | passed |" in md
    assert "waived by bob on" in md and WAIVER_REASON in md
    assert "| high | PII in features | carol |" in md

    code, out, _ = cli(capsys, "card", "churn", "1", "--json")
    card = json.loads(out)
    assert card["factors"]["sensitive"] == ["plan"]
    assert card["ethical_considerations"]["waivers"][0]["reason"] == WAIVER_REASON
    assert card["caveats"]["open_risks"][0]["title"] == "PII in features"

    page = tmp_path / "card.html"
    code, out, _ = cli(capsys, "card", "churn", "1", "--html", str(page))
    assert code == 0 and "Wrote the model card of churn v1" in out
    html = page.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)" in html
    assert WAIVER_REASON in html and "Monthly retention campaign." in html

    code, out, _ = cli(capsys, "audit", "log", "--json", "--subject", "model:churn/1")
    assert [e["action"] for e in json.loads(out)].count("card.edited") == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["risks", "add", "churn", "--risk", "x", "--severity", "critical", "--owner", "c"], 2,
         "Severity 'critical' is not one of low, medium, high."),
        (["risks", "add", "churn", "--risk", " ", "--severity", "high", "--owner", "c"], 2,
         "A risk needs a title"),
        (["risks", "add", "churn", "--risk", "x", "--severity", "high", "--owner", "c",
          "--version", "5"], 1, "Model 'churn' has no version 5; its versions are 1 to 1."),
        (["risks", "close", "churn", "1", "--reason", "x"], 1, "Model 'churn' has no risk #1"),
        (["risks", "list", "chrun"], 1, "Did you mean 'churn'?"),
        (["card", "churn", "9"], 1, "Model 'churn' has no version 9; its versions are 1 to 1."),
        (["card", "chrun", "1"], 1, "There is no model 'chrun'. Did you mean 'churn'?"),
        (["card", "churn", "1", "--json", "--html", "x.html"], 2, "not both"),
        (["card", "edit", "churn", "1"], 2, "Say what to write"),
        (["card", "edit", "churn", "1", "--section", "summary", "--text", "x"], 2,
         "'summary' is not a model card section; write one of: overview, intended_use"),
        (["card", "edit", "churn", "1", "--file", "missing.md"], 2, "No such file: 'missing.md'."),
        (["approve", "churn", "1", "--reason", "ok", "--ack-risk", "x"], 2, "Invalid value"),
    ],
)  # fmt: skip
def test_bad_input_is_one_sentence_with_the_right_exit_code(
    registered, capsys, args: list[str], code: int, message: str
) -> None:  # type: ignore[no-untyped-def]
    got, _, err = cli(capsys, *args)
    assert got == code and message in " ".join(err.split()), err
    _, out, _ = cli(capsys, "risks", "list", "churn", "--all", "--json")
    assert json.loads(out) == []  # nothing stored


def test_nothing_half_written(registered, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.md"
    bad.write_text("## Intended use\nFine.\n## Summary\nNot a section.\n", encoding="utf-8")
    code, _, err = cli(capsys, "card", "edit", "churn", "1", "--file", str(bad))
    assert code == 2 and "heading(s) 'Summary'" in err and "Intended use, Out of scope uses" in err
    code, out, _ = cli(capsys, "card", "churn", "1", "--json")
    assert json.loads(out)["notes"] == {}  # the good section was not written either

    page = tmp_path / "no-such-folder" / "card.html"
    code, _, err = cli(capsys, "card", "churn", "1", "--html", str(page))
    assert code == 2 and "Cannot write beside" in err and not page.parent.exists()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, _, err = cli(capsys, "card", "churn", "1", "--html", str(a_file / "card.html"))
    assert code == 2 and "Cannot write beside" in err
    folder = tmp_path / "a-folder"  # the path is a folder: the page cannot replace it
    folder.mkdir()
    code, _, err = cli(capsys, "card", "churn", "1", "--html", str(folder))
    assert code == 2 and f"Cannot write '{folder}'" in err
    assert list(tmp_path.glob(".a-folder.*")) == []  # the temporary page was removed
