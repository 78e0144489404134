"""``shipyard score``: exit 0 with the scored file, 2 on bad input with nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shipyard import Client, Settings
from shipyard.cli import run_cli

TrainingData = tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]


@pytest.fixture
def home(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fitted_pipeline: Any,
    training_data: TrainingData,
) -> Path:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    monkeypatch.delenv("SHIPYARD_DB_URL", raising=False)
    X, y, X_eval, _ = training_data
    c = Client(Settings()).open()
    c.register(fitted_pipeline, name="churn", X_train=X, y_train=y, onnx=False)
    c.close()
    X_eval.to_parquet(tmp_path / "in.parquet", index=False)
    return tmp_path


def test_score_writes_the_file(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["score", "churn:1", str(home / "in.parquet"), str(home / "out.csv")]
    assert run_cli([*args, "--chunk-rows", "100"]) == 0
    assert "Scored 150 rows in 2 chunk(s) with churn v1" in capsys.readouterr().out
    out = pd.read_csv(home / "out.csv")
    assert len(out) == 150 and {"prediction", "proba_churn", "version"} <= set(out.columns)


def test_bad_input_exits_2_and_writes_nothing(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pd.read_parquet(home / "in.parquet").drop(columns="age").to_parquet(home / "bad.parquet")
    assert run_cli(["score", "churn:1", str(home / "bad.parquet"), str(home / "out.csv")]) == 2
    assert "lacks the column(s) 'age'" in capsys.readouterr().err
    assert run_cli(["score", "churn:1", str(home / "nope.csv"), str(home / "out.csv")]) == 2
    assert "No such file" in capsys.readouterr().err
    assert not (home / "out.csv").exists()
    assert run_cli(["score", "churn:9", str(home / "in.parquet"), str(home / "out.csv")]) == 1
