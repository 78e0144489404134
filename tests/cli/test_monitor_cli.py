"""``shipyard monitor run --current``: exit 0 on clean data, 1 with the drifted feature named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from churn_data import churn_frame, log_predictions
from shipyard import Client, Settings
from shipyard.cli import run_cli


@pytest.fixture
def registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    monkeypatch.delenv("SHIPYARD_DB_URL", raising=False)
    X = churn_frame(20_000, 0)
    y = (X["age"] > 45).astype(int)
    model = HistGradientBoostingClassifier(max_iter=10, categorical_features=["plan"])
    model.fit(X, y)
    c = Client(Settings()).open()
    c.register(model, name="churn", X_train=X, y_train=y, onnx=False)
    c.close()
    return tmp_path


def test_clean_batch_passes_and_drifted_batch_fails(registered: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    clean = registered / "clean.parquet"
    churn_frame(10_000, 1).to_parquet(clean)
    assert run_cli(["monitor", "run", "churn:1", "--current", str(clean), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == 1 and report["n_rows"] == 10_000 and not report["drifted"]

    drifted = churn_frame(10_000, 2)
    drifted["age"] += 3.0  # a 0.3-sigma mean shift
    drifted.loc[:1999, "income"] = np.nan  # a missing-value spike
    path = registered / "drifted.csv"
    drifted.to_csv(path, index=False)
    html = registered / "report.html"
    assert (
        run_cli(["monitor", "run", "churn:1", "--current", str(path), "--report", str(html)]) == 1
    )
    out = capsys.readouterr().out
    page = html.read_text(encoding="utf-8")
    assert "<script src=" not in page and page.count("Plotly.newPlot") >= 3
    assert "age" in out and "income" in out and "flagged" in out
    assert run_cli(["monitor", "run", "churn:1", "--current", str(path), "--json"]) == 1
    flags = {
        f["name"]: (f["drifted"], f["quality_breached"])
        for f in json.loads(capsys.readouterr().out)["features"]
    }
    assert flags["age"][0] and flags["income"][1] and flags["plan"] == (False, False)


def test_bad_current_files(registered: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run_cli(["monitor", "run", "churn:1", "--current", str(registered / "no.parquet")]) == 2
    assert "No such file" in capsys.readouterr().err
    junk = registered / "junk.parquet"
    junk.write_bytes(b"not parquet")
    assert run_cli(["monitor", "run", "churn:1", "--current", str(junk)]) == 2
    assert "Cannot read" in capsys.readouterr().err
    empty = registered / "empty.csv"
    churn_frame(10, 0).head(0).to_csv(empty, index=False)
    assert run_cli(["monitor", "run", "churn:1", "--current", str(empty)]) == 2
    assert "no rows" in capsys.readouterr().err


def test_results_are_stored_as_time_series(registered: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    clean, drifted = registered / "clean.parquet", registered / "drifted.parquet"
    churn_frame(5_000, 1).to_parquet(clean)
    shifted = churn_frame(5_000, 2)
    shifted["age"] += 5.0
    shifted.to_parquet(drifted)
    assert run_cli(["monitor", "run", "churn", "--current", str(clean)]) == 1  # no production
    capsys.readouterr()
    assert run_cli(["monitor", "run", "churn:1", "--current", str(clean)]) == 0
    assert run_cli(["monitor", "run", "churn:1", "--current", str(drifted)]) == 1
    capsys.readouterr()
    assert (
        run_cli(["monitor", "history", "churn", "--metric", "drift", "--feature", "age", "--json"])
        == 0
    )
    series = json.loads(capsys.readouterr().out)
    assert [r["value"] for r in series] == [0.0, 1.0]
    assert [r["flagged"] for r in series] == [False, True]
    assert all(r["version"] == 1 and r["rows"] == 5_000 for r in series)
    assert (
        run_cli(["monitor", "history", "churn", "--metric", "psi", "--feature", "age", "--json"])
        == 0
    )
    psi = [r["value"] for r in json.loads(capsys.readouterr().out)]
    assert psi[0] < 0.1 < psi[1]
    assert run_cli(["monitor", "history", "nope"]) == 1
    assert "no model 'nope'" in capsys.readouterr().err


def test_monitor_the_logged_window_query_it_and_add_labels(registered: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    root = registered / "log"
    base = ["--log-dir", str(root)]
    code = run_cli(["monitor", "run", "churn:1", "--window", "1h", *base])
    assert code == 1 and "No logged predictions of churn v1" in capsys.readouterr().err
    shifted = churn_frame(3_000, 3)
    shifted["age"] += 5.0
    ids = log_predictions(root, shifted)
    assert run_cli(["monitor", "run", "churn:1", "--window", "1h", "--json", *base]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["n_rows"] == 3_000
    assert [f["name"] for f in report["features"] if f["drifted"]] == ["age"]
    assert run_cli(["monitor", "run", "churn:1", "--window", "0d", *base]) == 2
    assert "Invalid --window" in capsys.readouterr().err
    # --since/--until select the same window explicitly; a window before the log finds nothing
    now = datetime.now(UTC).replace(tzinfo=None)
    since = (now - timedelta(hours=1)).isoformat(timespec="seconds")
    assert run_cli(["monitor", "run", "churn:1", "--since", since, "--json", *base]) == 1
    assert json.loads(capsys.readouterr().out)["n_rows"] == 3_000
    old = ["--since", "2020-01-01T00:00:00", "--until", "2020-01-02T00:00:00"]
    assert run_cli(["monitor", "run", "churn:1", *old, *base]) == 1
    assert "No logged predictions of churn v1" in capsys.readouterr().err
    backwards = ["--since", "2020-01-02T00:00:00", "--until", "2020-01-01T00:00:00"]
    assert run_cli(["monitor", "run", "churn:1", *backwards, *base]) == 2
    assert "must be before --until" in capsys.readouterr().err
    batch = registered / "batch.parquet"
    shifted.to_parquet(batch)
    assert run_cli(["monitor", "run", "churn:1", "--current", str(batch), "--since", since]) == 2
    assert "leave them out with --current" in capsys.readouterr().err
    assert run_cli(["monitor", "run", "churn:1", "--since", "yesterday", *base]) == 2
    assert "Traceback" not in capsys.readouterr().err

    assert (
        run_cli(
            [
                "predictions",
                "query",
                "churn",
                "--json",
                *base,
                "--sql",
                "SELECT count(*) AS n FROM predictions",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out) == [{"n": 3_000}]
    labels = registered / "labels.csv"
    pd.DataFrame({"prediction_id": [*ids[:10], "nope"], "label": [1] * 11}).to_csv(
        labels, index=False
    )
    assert run_cli(["feedback", "churn", str(labels), "--json", *base]) == 1
    assert json.loads(capsys.readouterr().out)["matched"] == 10
    assert (
        run_cli(
            [
                "predictions",
                "query",
                "churn",
                "--json",
                *base,
                "--sql",
                "SELECT count(*) AS n FROM predictions JOIN feedback USING (prediction_id)",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out) == [{"n": 10}]
    assert run_cli(["predictions", "query", "churn", *base, "--sql", "SELEC nonsense"]) == 2
    assert "The SQL query failed" in capsys.readouterr().err
