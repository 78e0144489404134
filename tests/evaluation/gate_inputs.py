"""Registering models and building ``EvalInputs`` for the gate tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from churn_data import churn_frame
from shipyard import Client
from shipyard.config import ModelPolicy, ProjectConfig
from shipyard.evaluation import EvalInputs


def labelled(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """``churn_frame`` rows and a churn label that depends on age and plan."""
    X = churn_frame(n, seed)
    rng = np.random.default_rng(seed + 100)
    logit = 0.08 * (X["age"] - 45) + (X["plan"] == "pro") * 1.5
    y = pd.Series(np.where(logit + rng.logistic(0, 1, n) > 0, "churn", "stay"), name="churn")
    return X, y


def pipeline() -> Any:
    """Scaled numbers and one-hot plan into a logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = ["age", "income"]
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    return Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=500))])


def policy(**model: Any) -> ModelPolicy:
    """The policy of model ``m`` declared as ``[models.m]`` = ``model``."""
    return ProjectConfig.model_validate({"models": {"m": model}}).policy("m")


def register(client: Client, model: Any, X: pd.DataFrame, y: Any, *, onnx: bool = False) -> int:
    """Register ``model`` as the next version of ``m``; its version number."""
    return client.register(model, name="m", X_train=X, y_train=y, onnx=onnx).version


def inputs(
    client: Client,
    rows: pd.DataFrame,
    target: Any,
    *,
    candidate: int,
    champion: int | None = None,
    model_policy: ModelPolicy | None = None,
) -> EvalInputs:
    """``EvalInputs`` for versions of ``m`` loaded back from the registry."""
    registry = client.registry

    def size(version: int) -> int:
        mv = registry.get_version("m", version)
        return len(client.store.artifacts.get(mv.archive_key))

    return EvalInputs(
        rows=rows,
        target=np.asarray(target),
        candidate=registry.load("m", candidate),
        champion=None if champion is None else registry.load("m", champion),
        policy=model_policy or policy(),
        candidate_archive=registry.open_archive("m", candidate),
        champion_archive=None if champion is None else registry.open_archive("m", champion),
        champion_size=None if champion is None else size(champion),
        candidate_size=size(candidate),
    )
