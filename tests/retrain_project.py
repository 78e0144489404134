"""What the retraining tests share (checks, CLI, scheduler): a real entry-point module written
into the project folder, labelled churn rows, a registered champion and the project declaring
the retraining."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn_data import churn_frame
from shipyard.config import ProjectConfig
from shipyard.registry import Registry
from shipyard.store import Store
from shipyard.store.tables import RetrainRun, utcnow

TRAIN_MODULE = '''
"""The project's training code: given the training rows, return a fitted pipeline."""
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

SEEN = []


def train(frame):
    SEEN.append(list(frame.columns))
    X, y = frame.drop(columns=["churned"]), frame["churned"]
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    return make_pipeline(prep, LogisticRegression(max_iter=500)).fit(X, y)


def unfitted(frame):
    return LogisticRegression()


def broken(frame):
    raise RuntimeError("the GPU is on fire")
'''


def labelled(n: int, seed: int) -> pd.DataFrame:
    """Churn rows with a ``churned`` label that depends on age and plan."""
    frame = churn_frame(n, seed)
    rng = np.random.default_rng(seed + 100)
    logit = 0.08 * (frame["age"] - 45) + (frame["plan"] == "pro") * 1.0
    frame["churned"] = (logit + rng.normal(0, 1, n) > 0).astype(int)
    return frame


def write_project(folder: Path, module: str = TRAIN_MODULE) -> None:
    """The entry module ``train_churn.py`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train_churn.py").write_text(module, encoding="utf-8")


def project(
    *,
    channel_tables: dict[str, Any] | None = None,
    alerts: list[Any] | None = None,
    **retrain: Any,
) -> ProjectConfig:
    """A project whose promotions need no gates, with ``[models.churn.retrain]`` (and the
    given ``[channels.*]`` and ``[[alerts]]``)."""
    table = {"entry": "train_churn:train", "target": "churned", **retrain}
    return ProjectConfig.model_validate(
        {
            "gates": {"require": False},
            "models": {"churn": {"retrain": table}},
            "channels": channel_tables or {},
            "alerts": alerts or [],
        }
    )


def pipeline() -> Any:
    """The pipeline ``train_churn.train`` fits, unfitted."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    return make_pipeline(prep, LogisticRegression(max_iter=500))


def register_champion(store: Store, *, promote: bool = False) -> None:
    """``churn`` v1 by alice on 2,000 labelled rows; approved by bob and promoted if asked."""
    from shipyard.packaging import prepare_archive

    rows = labelled(2_000, 0)
    X = rows[["age", "income", "plan"]]
    model = pipeline().fit(X, rows["churned"])

    registry = Registry(store, ProjectConfig.model_validate({"gates": {"require": False}}))
    prepared = prepare_archive(
        model, X_train=X, y_train=rows["churned"], X_eval=X, y_eval=rows["churned"], onnx=False
    )
    registry.register(prepared, name="churn", actor="alice")
    if promote:
        from shipyard.auth import Users

        Users(store).set_role("bob", "approver", actor="admin")
        registry.approve("churn", 1, actor="bob", reason="baseline")
        registry.promote("churn", 1, actor="alice")


def hold_running(store: Store, *, by: str = "dave", trigger: str = "manual") -> None:
    """A ``running`` retraining of churn owned by this (live) process, started by ``by``."""
    import os
    import socket

    with store.write() as session:
        session.add(
            RetrainRun(
                model_name="churn",
                trigger=trigger,
                status="running",
                started_at=utcnow(),
                started_by=by,
                owner=f"{socket.gethostname()}:{os.getpid()}",
                finished_at=None,
                message="",
                details={},
            )
        )
