"""Models made with MLflow itself (the real ``mlflow`` package) for the importer's tests."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest


@contextmanager
def quiet() -> Iterator[None]:
    """MLflow warns about its own choices (pip versions, integer columns): not ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


with quiet():  # MLflow's modules warn on import (type hints they cannot validate)
    pytest.importorskip("mlflow")
    import mlflow.lightgbm
    import mlflow.models
    import mlflow.pyfunc
    import mlflow.sklearn
    import mlflow.xgboost


def loan_frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Numeric loan-like rows with ~5% missing incomes, and a label."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.normal(50, 15, n),
            "debt": rng.normal(10, 4, n),
            "years": rng.integers(0, 30, n).astype("int64"),
        }
    )
    y = pd.Series(((X.debt / X.income.clip(lower=1)) + rng.normal(0, 0.05, n) > 0.2).astype(int))
    X.loc[rng.random(n) < 0.05, "income"] = np.nan
    return X, y


def fitted(kind: str, X: pd.DataFrame, y: pd.Series) -> Any:
    """A fitted classifier of framework ``kind`` (sklearn, xgboost, lightgbm)."""
    if kind == "sklearn":
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        pipeline = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression())
        return pipeline.fit(X, y)
    if kind == "xgboost":
        import xgboost

        return xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(X, y)
    import lightgbm

    return lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y)


def save(kind: str, model: Any, path: Path, **kwargs: Any) -> Path:
    """``mlflow.<kind>.save_model(model, path, **kwargs)``; skops (MLflow's default format for
    scikit-learn) is told to trust numpy's dtype, which SimpleImputer keeps, as users do."""
    if kind == "sklearn" and "serialization_format" not in kwargs:
        kwargs.setdefault("skops_trusted_types", ["numpy.dtype"])
    with quiet():
        getattr(mlflow, kind).save_model(model, str(path), **kwargs)
    return path
