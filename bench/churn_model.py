"""The churn model the serving benchmarks (soak, replicas, rate limits) serve: three numeric
columns and a categorical one, a scaler + one-hot + logistic-regression pipeline (the tests'
``fitted_pipeline`` on more rows). One definition, so their figures describe the same model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def churn_frame(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """``n`` rows of features and their churn/stay label."""
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
    """The pipeline, fitted on ``X``, ``y``."""
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
