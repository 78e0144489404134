"""Batch fixtures: ``alice``, a client on a SQLite home holding churn v1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shipyard import Client, Settings

TrainingData = tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]


@pytest.fixture
def alice(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fitted_pipeline: Any,
    training_data: TrainingData,
) -> Iterator[Client]:
    """A client on a SQLite home with churn v1 (not the store fixture: once, not per database,
    since the Spark path does not touch the store)."""
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    monkeypatch.delenv("SHIPYARD_DB_URL", raising=False)
    X, y, _, _ = training_data
    c = Client(Settings()).open()
    c.register(fitted_pipeline, name="churn", X_train=X, y_train=y, onnx=False)
    yield c
    c.close()
