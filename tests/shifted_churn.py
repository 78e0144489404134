"""Test data for label-free estimates: churn rows whose label depends on age only, a real
model registered with (or without) eval rows, and a prediction log of its real outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from churn_data import churn_frame
from shipyard import Client
from shipyard.predlog import PredictionLog


def labelled(n: int, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Churn rows whose label depends on age only: P(y=1 | age) = sigmoid((age - 60) / 6).
    Shifting age towards 60 (covariate shift) makes the model less sure, and less right."""
    X = churn_frame(n, seed)
    X["age"] += shift
    p = 1 / (1 + np.exp(-(X["age"].to_numpy() - 60) / 6))
    return X, (np.random.default_rng(seed + 100).uniform(size=n) < p).astype(int)


def register_model(client: Client, *, with_eval: bool = True, regressor: bool = False) -> Any:
    """Register ``churn`` v1 (a classifier, or a regressor) fitted on 2,000 unshifted rows,
    with 2,000 eval rows unless ``with_eval`` is false; returns the fitted model."""
    X, y = labelled(2_000, 0)
    if regressor:
        model: Any = HistGradientBoostingRegressor(max_iter=20, categorical_features=["plan"])
    else:
        model = HistGradientBoostingClassifier(max_iter=20, categorical_features=["plan"])
    model.fit(X, y)
    X_eval, y_eval = labelled(2_000, 1)
    evals = {"X_eval": X_eval, "y_eval": y_eval} if with_eval else {}
    client.register(model, name="churn", X_train=X, y_train=y, onnx=False, **evals)
    return model


def log_outputs(root: Path, model: Any, X: pd.DataFrame, y: np.ndarray, with_labels: int) -> None:
    """Log ``X``'s real predictions and probabilities; send labels for the first
    ``with_labels`` rows."""
    ids = [f"p{i}" for i in range(len(X))]
    pred = model.predict(X)
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    log = PredictionLog(root).open()
    log.append(
        {
            "prediction_id": pid,
            "model": "churn",
            "version": 1,
            "arm": "production",
            "inputs": row,
            "prediction": pred[i].item(),
            "proba": None if proba is None else {"0": proba[i, 0], "1": proba[i, 1]},
            "latency_ms": 1.0,
            "status": "ok",
        }
        for i, (pid, row) in enumerate(zip(ids, X.to_dict(orient="records"), strict=True))
    )
    if with_labels:
        labels = pd.DataFrame({"prediction_id": ids[:with_labels], "label": y[:with_labels]})
        log.record_feedback_frame("churn", labels)
    log.close()
