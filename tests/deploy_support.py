"""The deploy tests' shared set-up: a registered model and a lock of one's choosing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shipyard.client import Client


@dataclass(frozen=True)
class Registered:
    """The registered model, its eval rows and where the CLI's store lives."""

    client: Client
    rows: pd.DataFrame
    home: Path


def register_with_lock(
    monkeypatch: pytest.MonkeyPatch, c: Client, model: Any, X: Any, lock: str, name: str
) -> None:
    """Register ``model`` as ``name`` with ``lock`` as its requirements.lock."""
    fake: Callable[[], str] = lambda: lock  # noqa: E731
    with monkeypatch.context() as m:
        m.setattr("shipyard.packaging._prepare.requirements_lock", fake)
        c.register(model, name=name, X_train=X, onnx=False)
