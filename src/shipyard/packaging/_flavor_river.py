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
from collections.abc import Mapping
from typing import Any, ClassVar

import joblib
import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.packaging._manifest import Task
from shipyard.packaging._onnx import OnnxExport

#: The module of the batch wrappers (``RiverClassifier``, ``RiverRegressor``).
_WRAPPERS = "shipyard.packaging._river_models"


def _is_river(model: Any) -> bool:
    return type(model).__module__.split(".", 1)[0] == "river" and hasattr(model, "learn_one")


class RiverFlavor:
    """River online learners (``learn_one``), pickled with joblib behind a batch wrapper."""

    name: ClassVar[str] = "river"
    framework: ClassVar[str] = "river"
    supports: ClassVar[str] = "river online learners"

    def handles(self, model: Any) -> bool:
        return type(model).__module__ == _WRAPPERS or _is_river(model)

    def adapt(self, model: Any, y_train: Any) -> Any:
        """The river estimator behind its wrapper (classifier classes from ``y_train``)."""
        from shipyard.packaging._river_models import RiverClassifier, RiverRegressor

        if type(model).__module__ == _WRAPPERS:
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
        return "classification" if type(model).__name__ == "RiverClassifier" else "regression"

    def classes(self, model: Any) -> list[Any] | None:
        return list(model.classes or []) if self.task(model) == "classification" else None

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
        return OnnxExport.none(reason, n_rows)

    def save(self, model: Any) -> dict[str, bytes]:
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        return {"model/river.joblib": buffer.getvalue()}

    def load(self, members: Mapping[str, bytes]) -> Any:
        return joblib.load(io.BytesIO(members["model/river.joblib"]))
