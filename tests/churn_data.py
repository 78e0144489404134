"""Churn data: the labelled frames and pipeline of the tests' ``training_data`` and
``fitted_pipeline`` (also the serving benchmarks' model), and the frames and prediction log
shared by the monitoring CLI and the scheduler's monitor job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def labelled_churn(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """``n`` rows of age, income, tenure and plan, and their churn/stay label: the tests'
    ``training_data`` and the serving benchmarks' (soak, replicas, rate limits) model data."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50_000, 12_000, n),
            "tenure": rng.exponential(3.0, n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )
    logit = 0.04 * (X["age"] - 50) + (X["plan"] == "pro") * 1.2 - 0.2 * X["tenure"]
    y = pd.Series(np.where(logit + rng.normal(0, 1, n) > 0, "churn", "stay"), name="churn")
    return X, y


def churn_pipeline(X: pd.DataFrame, y: pd.Series) -> Any:
    """Scaler + one-hot + logistic regression, fitted on ``X``, ``y`` (the tests'
    ``fitted_pipeline``)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income", "tenure"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    return Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=500))]).fit(X, y)


def churn_frame(n: int, seed: int) -> pd.DataFrame:
    """``n`` rows of age (normal), income (log-normal) and plan (three categories)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(45, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def log_predictions(root: Path, frame: pd.DataFrame, version: int = 1) -> list[str]:
    """Log every row of ``frame`` as an accepted churn prediction (ids ``p0``, ``p1``...)."""
    from shipyard.predlog import PredictionLog

    ids = [f"p{i}" for i in range(len(frame))]
    log = PredictionLog(root).open()
    log.append(
        {
            "prediction_id": pid,
            "model": "churn",
            "version": version,
            "arm": "production",
            "inputs": row,
            "prediction": 1,
            "proba": {"0": 0.3, "1": 0.7},
            "latency_ms": 1.0,
            "status": "ok",
        }
        for pid, row in zip(ids, frame.to_dict(orient="records"), strict=True)
    )
    log.close()
    return ids
