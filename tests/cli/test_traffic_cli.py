"""``shipyard promote --canary/--shadow``, ``split``, ``traffic``, ``rollback``: exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.cli import run_cli
from shipyard.packaging import prepare_archive
from shipyard.registry import Registry
from shipyard.store import Store


@pytest.fixture
def env(
    store: Store, db_url: str, tmp_path: Path, monkeypatch, fitted_pipeline, training_data, approver
):  # type: ignore[no-untyped-def]
    """churn v1..v3 by alice (v1, v2 approved, v1 production); the CLI acts as alice."""
    X, y, _, _ = training_data
    prepared = prepare_archive(fitted_pipeline, X_train=X, y_train=y, onnx=False)
    registry = Registry(store)
    for _ in range(3):
        registry.register(prepared, name="churn", actor="alice")
    for v in (1, 2):
        approver.approve("churn", v, reason="ok")
    registry.promote("churn", 1, actor="alice")
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_DB_URL", db_url)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    return registry


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_cli(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _history(capsys: pytest.CaptureFixture[str]) -> list[dict]:  # type: ignore[type-arg]
    code, out, _ = cli(capsys, "traffic", "churn", "--json")
    assert code == 0
    return list(json.loads(out)["history"])


def test_happy_paths(env, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(capsys, "promote", "churn", "2", "--canary", "10", "--sticky", "header:X-U")
    assert code == 0 and "v2 10%" in out
    code, out, _ = cli(capsys, "promote", "churn", "3", "--shadow")
    assert code == 0 and "shadow v3" in out
    code, out, _ = cli(capsys, "traffic", "churn")
    assert code == 0 and "canary" in out
    code, out, _ = cli(capsys, "rollback", "churn")
    assert code == 0 and "Ended" in out and "production is unchanged" in out
    assert env.aliases("churn")["production"] == 1
    code, out, _ = cli(capsys, "split", "churn", "1=50", "2=50")
    assert code == 0 and "v1 50%" in out
    code, _, _ = cli(capsys, "traffic", "churn", "--clear", "--reason", "done")
    assert code == 0
    assert [h["kind"] for h in _history(capsys)][:2] == ["none", "split"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("split", "churn", "1=abc", "2=50"), 2, "not a percentage"),
        (("split", "churn", "1=50", "2=40"), 2, "sum to 90"),
        (("split", "churn", "1:50", "2=50"), 2, "VERSION=PERCENT"),
        (("split", "churn", "1=50", "9=50"), 1, "no version 9"),
        (("promote", "churn", "9", "--canary", "10"), 1, "no version 9"),
        (("promote", "churn", "3", "--canary", "10"), 1, "needs an approval"),
        (("promote", "churn", "2", "--canary", "10", "--sticky", "cookie"), 2, "header:<name>"),
        (("promote", "churn", "2", "--canary", "150"), 2, "at most 100"),
        (("promote", "churn", "2", "--canary", "10", "--shadow"), 2, "not both"),
        (("traffic", "churn", "--clear"), 1, "no traffic policy"),
    ],
)
def test_malformed_input(env, capsys, args, code, message) -> None:  # type: ignore[no-untyped-def]
    got, _, err = cli(capsys, *args)
    assert got == code and message in " ".join(err.split())
    assert _history(capsys) == []  # nothing written
