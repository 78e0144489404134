"""River models: online learners (``learn_one``), packaged behind a batch interface.

River scores one row (a dict) at a time; Shipyard scores frames. ``RiverClassifier`` and
``RiverRegressor`` wrap a river estimator in the scikit-learn interface the rest of
Shipyard reads (``predict``, ``predict_proba``, ``classes_``) and keep ``learn_one``, so a
server can go on teaching a copy of a served version (see ``shipyard.serving``'s online
learning). Register the river estimator itself: ``prepare_archive`` wraps it
(``RiverFlavor.adapt``), with the classes of a classifier taken from ``y_train`` (a river
classifier learns its classes as it goes; the archive's outputs need them fixed).

Missing values (``None``/NaN) are left out of the row's dict, as river expects.

>>> from river import linear_model, preprocessing
>>> model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
>>> for x, y in stream: model.learn_one(x, y)  # doctest: +SKIP
>>> client.register(model, name="fraud", X_train=X, y_train=y)  # doctest: +SKIP
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from shipyard.errors import InvalidInput
from shipyard.packaging._manifest import Task
from shipyard.packaging._onnx import OnnxExport


def _is_river(model: Any) -> bool:
    return type(model).__module__.split(".", 1)[0] == "river" and hasattr(model, "learn_one")


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


class RiverFlavor:
    """River online learners (``learn_one``), pickled with joblib behind a batch wrapper."""

    name: ClassVar[str] = "river"
    framework: ClassVar[str] = "river"
    supports: ClassVar[str] = "river online learners"

    def handles(self, model: Any) -> bool:
        return isinstance(model, _RiverModel) or _is_river(model)

    def adapt(self, model: Any, y_train: Any) -> _RiverModel:
        """The river estimator behind its wrapper (classifier classes from ``y_train``)."""
        if isinstance(model, _RiverModel):
            return model
        from river import base

        if isinstance(model, base.Classifier):
            if y_train is None:
                raise InvalidInput(
                    "Pass y_train with a river classifier: its classes are the labels in it."
                )
            classes = sorted({v.item() if isinstance(v, np.generic) else v for v in y_train})
            return RiverClassifier(model, classes)
        if isinstance(model, base.Regressor):
            return RiverRegressor(model)
        raise InvalidInput(
            f"Shipyard serves river classifiers and regressors; a {type(model).__name__} "
            "is neither."
        )

    def check_fitted(self, model: Any) -> None:
        """A river model answers from its first row on: always fitted."""

    def task(self, model: Any) -> Task:
        return "classification" if isinstance(model, RiverClassifier) else "regression"

    def classes(self, model: Any) -> list[Any] | None:
        return list(model.classes or []) if isinstance(model, RiverClassifier) else None

    def frameworks(self, model: Any) -> tuple[str, ...]:
        return ("river",)

    def export_onnx(
        self, model: Any, X_sample: pd.DataFrame, X_eval: pd.DataFrame | None, *, task: Task
    ) -> OnnxExport:
        n_rows = len(X_sample if X_eval is None else X_eval)
        reason = (
            "river models have no ONNX export (they learn one row at a time), so they are "
            "served with the native runtime"
        )
        return OnnxExport(None, (), "double", None, None, n_rows, reason)

    def save(self, model: Any) -> dict[str, bytes]:
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        return {"model/river.joblib": buffer.getvalue()}

    def load(self, members: Mapping[str, bytes]) -> Any:
        return joblib.load(io.BytesIO(members["model/river.joblib"]))
