"""River estimators behind scikit-learn's batch interface (``RiverFlavor`` wraps them).

Kept apart from the flavor so that importing ``shipyard.packaging`` does not import
scikit-learn: this module is imported only for a river model (registering or unpickling one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from shipyard.errors import InvalidInput


def _row(record: Mapping[Any, Any]) -> dict[str, Any]:
    """One row as river takes it: plain values, missing ones left out."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        out[str(key)] = value.item() if isinstance(value, np.generic) else value
    return out


def _rows(X: Any) -> list[dict[str, Any]]:
    if isinstance(X, pd.DataFrame):
        return [_row(r) for r in X.to_dict("records")]
    array = np.asarray(X)
    return [_row({f"x{i}": v for i, v in enumerate(r)}) for r in array]


class _RiverModel(BaseEstimator):
    """What both wrappers share: the river estimator and how rows reach it."""

    def __init__(self, estimator: Any = None) -> None:
        self.estimator = estimator

    def __sklearn_is_fitted__(self) -> bool:
        # A river model can answer at any time (it learns as it goes).
        return True

    def fit(self, X: Any, y: Any) -> _RiverModel:
        """Learn every row of ``X`` with its label, in order (river's ``learn_one``)."""
        for x, target in zip(_rows(X), np.asarray(y).tolist(), strict=True):
            self.learn_one(x, target)
        return self

    def learn_one(self, x: Mapping[str, Any], y: Any) -> None:
        self.estimator.learn_one(_row(x), y)


class RiverClassifier(ClassifierMixin, _RiverModel):
    """A river classifier with fixed ``classes_`` (its archive's output columns)."""

    def __init__(self, estimator: Any = None, classes: list[Any] | None = None) -> None:
        super().__init__(estimator)
        self.classes = classes

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.classes if self.classes is not None else [])

    def label(self, y: Any) -> Any:
        """``y`` as one of the classes (a label sent as ``"1"`` for class ``1``), or refuse."""
        for cls in self.classes or []:
            if y == cls or str(y) == str(cls):
                return cls
        raise InvalidInput(
            f"The label {str(y)[:40]!r} is not one of this model's classes "
            f"{self.classes}: an online learner keeps the classes it was registered with."
        )

    def learn_one(self, x: Mapping[str, Any], y: Any) -> None:
        self.estimator.learn_one(_row(x), self.label(y))

    def predict_proba(self, X: Any) -> np.ndarray:
        classes = list(self.classes or [])
        out = np.zeros((len(X), len(classes)))
        for i, x in enumerate(_rows(X)):
            proba = self.estimator.predict_proba_one(x) or {}
            out[i] = [float(proba.get(c, 0.0)) for c in classes]
            total = out[i].sum()
            out[i] = out[i] / total if total > 0 else 1.0 / len(classes)
        return out

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class RiverRegressor(RegressorMixin, _RiverModel):
    """A river regressor."""

    def label(self, y: Any) -> float:
        """``y`` as a number, or refuse."""
        try:
            value = float(y)
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(y, bool) or not math.isfinite(value):
            raise InvalidInput(f"The label {str(y)[:40]!r} of a regressor must be a finite number.")
        return value

    def learn_one(self, x: Mapping[str, Any], y: Any) -> None:
        self.estimator.learn_one(_row(x), self.label(y))

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray([float(self.estimator.predict_one(x)) for x in _rows(X)])
