"""The deploy tests' store: a SQLite store the CLI points at, with ``churn`` v1 registered
(the shared sklearn pipeline) and aliased ``staging``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_support import point_cli_at
from deploy_support import Registered
from kserve_venv import kserve_python  # noqa: F401 (a fixture for the KServe tests)
from shipyard.client import Client
from shipyard.settings import Settings


@pytest.fixture
def registered(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fitted_pipeline,  # type: ignore[no-untyped-def]
    training_data,  # type: ignore[no-untyped-def]
) -> Iterator[Registered]:
    point_cli_at(monkeypatch, f"sqlite:///{tmp_path / 'shipyard.db'}", tmp_path, toml=None)
    c = Client(Settings()).open()
    X_train, y_train, X_eval, _ = training_data
    c.register(fitted_pipeline, name="churn", X_train=X_train, y_train=y_train, onnx=False)
    c.promote("churn", 1, to="staging")
    yield Registered(c, X_eval.reset_index(drop=True), tmp_path)
    c.close()
