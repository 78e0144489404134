"""``shipyard monitor run`` over a log window: performance from feedback labels (coverage,
label delay, intervals), the service section, stored series, and performance alert rules."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_monitor_cli import registered  # noqa: F401 - the fixture is used by name

from churn_data import churn_frame, log_predictions
from shipyard.cli import run_cli


def test_performance_and_service_from_a_real_log(
    registered: Path,  # noqa: F811 - pytest fixture
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = registered / "log"
    base = ["--log-dir", str(root), "--window", "1h"]
    ids = log_predictions(root, churn_frame(2_000, 1))  # every prediction is 1 (proba 0.7)
    labels = registered / "labels.csv"
    pd.DataFrame(
        {"prediction_id": [*ids[:300], *ids[300:400]], "label": [1] * 300 + [0] * 100}
    ).to_csv(labels, index=False)
    assert run_cli(["feedback", "churn", str(labels), "--log-dir", str(root)]) == 0
    capsys.readouterr()

    assert run_cli(["monitor", "run", "churn:1", "--json", "--label-delay", "0", *base]) == 0
    doc = json.loads(capsys.readouterr().out)
    perf = doc["performance"]
    assert perf["coverage"]["coverage"] == pytest.approx(400 / 2_000)
    assert perf["n_used"] == 400 and perf["average"].startswith("binary")
    metrics = {m["name"]: m for m in perf["metrics"]}
    assert metrics["accuracy"]["value"] == pytest.approx(0.75)
    assert metrics["accuracy"]["ci_low"] < 0.75 < metrics["accuracy"]["ci_high"]
    assert metrics["recall"]["value"] == 1.0
    assert metrics["roc_auc"]["value"] == pytest.approx(0.5)  # a constant score
    service = doc["service"]
    assert service["requests"] >= 1 and service["predictions"] == 2_000
    assert service["groups"][0]["version"] == 1 and service["groups"][0]["latency_p99_ms"] == 1.0

    # Nothing is older than a 2 h delay: no coverage yet, but metrics on what arrived.
    html = registered / "report.html"
    code = run_cli(
        ["monitor", "run", "churn:1", "--label-delay", "2h", "--report", str(html), *base]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Performance" in out and "Service" in out and "accuracy" in out
    page = html.read_text(encoding="utf-8")
    assert "performance over time" in page and "service: latency" in page
    assert 'id="chart-10000"' in page and "accuracy interval" in page
    assert "<script src=" not in page
    assert run_cli(["monitor", "history", "churn", "--metric", "accuracy", "--json"]) == 0
    series = json.loads(capsys.readouterr().out)
    assert [r["value"] for r in series] == [pytest.approx(0.75)] * 2
    assert run_cli(["monitor", "history", "churn", "--metric", "accuracy.ci_low", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert run_cli(["monitor", "history", "churn", "--metric", "label_coverage", "--json"]) == 0
    assert [r["value"] for r in json.loads(capsys.readouterr().out)] == [0.2, None]

    # A performance rule in shipyard.toml: accuracy below 0.8 is a breach (exit 1).
    config = registered / "shipyard.toml"
    config.write_text(
        '[monitoring]\nlabel_delay = "0"\n\n[[alerts]]\nname = "accuracy"\n'
        'metric = "accuracy"\nbelow = 0.8\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("SHIPYARD_CONFIG", str(config))
    assert run_cli(["monitor", "run", "churn:1", *base]) == 1
    assert "accuracy is 0.75 (limit" in " ".join(capsys.readouterr().out.split())


def test_bad_label_delay_and_no_labels(
    registered: Path,  # noqa: F811 - pytest fixture
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = registered / "log"
    base = ["--log-dir", str(root), "--window", "1h"]
    log_predictions(root, churn_frame(500, 2))
    assert run_cli(["monitor", "run", "churn:1", "--label-delay", "soon", *base]) == 2
    err = capsys.readouterr().err
    assert "Invalid --label-delay 'soon'" in err and "Traceback" not in err
    assert run_cli(["monitor", "run", "churn:1", "--json", *base]) == 0
    perf = json.loads(capsys.readouterr().out)["performance"]
    assert perf["n_used"] == 0 and "No labels yet" in perf["message"]
    config = registered / "shipyard.toml"
    config.write_text("[monitoring]\nlabel_delay = 5\n", encoding="utf-8")
    monkeypatch.setenv("SHIPYARD_CONFIG", str(config))
    assert run_cli(["monitor", "run", "churn:1", *base]) == 2
    assert '[monitoring] label_delay: must be a string such as "1h"' in capsys.readouterr().err
