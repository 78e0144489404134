"""``shipyard monitor run`` over a log window prints the label-free estimate beside the
realised metrics with its assumptions, puts it in ``--json``, stores its series, and an
``[[alerts]]`` rule on ``estimated_accuracy`` makes the run a breach (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shifted_churn import labelled, log_outputs, register_model
from shipyard import Client, Settings
from shipyard.cli import run_cli


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    monkeypatch.delenv("SHIPYARD_DB_URL", raising=False)
    return tmp_path


def test_estimate_beside_realised_in_text_json_history_and_alerts(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = Client(Settings()).open()
    model = register_model(c)
    c.close()
    root = home / "log"
    X, y = labelled(2_000, 5, shift=15.0)
    log_outputs(root, model, X, y, with_labels=1_000)
    base = ["monitor", "run", "churn:1", "--log-dir", str(root), "--window", "1h"]

    assert run_cli([*base, "--json", "--label-delay", "0"]) == 1  # age drifted
    doc = json.loads(capsys.readouterr().out)
    estimate = doc["estimate"]
    assert doc["estimate_note"] is None and estimate["method"] == "cbpe"
    assert estimate["n"] == 2_000 and estimate["reference_rows"] == 2_000
    metrics = {m["name"]: m for m in estimate["metrics"]}
    assert set(metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert metrics["accuracy"]["ci_low"] < metrics["accuracy"]["value"] < 0.8
    assert any("no concept drift" in a for a in estimate["assumptions"])
    realised = {m["name"]: m["value"] for m in doc["performance"]["metrics"]}
    assert metrics["accuracy"]["ci_low"] < realised["accuracy"] < metrics["accuracy"]["ci_high"]

    config = home / "shipyard.toml"
    config.write_text(
        '[monitoring]\nlabel_delay = "0"\n\n[[alerts]]\nname = "estimated"\n'
        'metric = "estimated_accuracy"\nbelow = 0.8\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("SHIPYARD_CONFIG", str(config))
    assert run_cli(base) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "Estimated without labels (CBPE) on 2,000; realised on 1,000 labelled" in out
    assert "assumes no concept drift (P(y|x) unchanged)" in out
    assert "covariate shift only" in out
    assert "Alert" in out and "estimated_accuracy is" in out

    assert run_cli(["monitor", "history", "churn", "--metric", "estimated_accuracy", "--json"]) == 0
    series = json.loads(capsys.readouterr().out)
    assert [r["value"] for r in series] == [pytest.approx(metrics["accuracy"]["value"])] * 2


def test_without_eval_outputs_the_run_says_why_in_one_line(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = Client(Settings()).open()
    model = register_model(c, with_eval=False)
    c.close()
    root = home / "log"
    X, y = labelled(300, 6)
    log_outputs(root, model, X, y, with_labels=0)
    base = ["monitor", "run", "churn:1", "--log-dir", str(root), "--window", "1h"]
    assert run_cli([*base, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["estimate"] is None and "no eval outputs" in doc["estimate_note"]
    assert run_cli(base) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "No label-free estimate" in line]
    assert len(lines) == 1 and "X_eval" in out
