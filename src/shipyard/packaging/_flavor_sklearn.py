"""The scikit-learn flavor: estimators and pipelines, pickled with joblib.

Its checks (``check_is_fitted``, ``is_classifier``, ``classes_``) are the defaults the other
scikit-learn-compatible flavors (XGBoost, LightGBM) inherit.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.packaging._manifest import Task
from shipyard.packaging._onnx import OnnxExport, export_onnx
from shipyard.packaging._onnx_boosters import non_numeric_reason
from shipyard.packaging._pickled import PickleStorage, module_root

#: Distribution of each top-level package a model's estimators may come from.
_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
}


class SklearnFlavor(PickleStorage):
    """scikit-learn estimators and pipelines (pickled with joblib)."""

    name: ClassVar[str] = "sklearn"
    framework: ClassVar[str] = "scikit-learn"
    supports: ClassVar[str] = "scikit-learn estimators and pipelines"
    #: Whether the ONNX converter takes numeric columns only (onnxmltools' boosters).
    numeric_only: ClassVar[bool] = False

    def handles(self, model: Any) -> bool:
        return hasattr(model, "get_params") and hasattr(model, "fit")

    def check_fitted(self, model: Any) -> None:
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        try:
            check_is_fitted(model)
        except NotFittedError as exc:
            raise InvalidInput(
                f"The {type(model).__name__} is not fitted: call fit(X, y) before registering it."
            ) from exc
        except TypeError as exc:  # not an estimator at all
            raise InvalidInput(
                f"Shipyard cannot package a {type(model).__name__}: it is not a scikit-learn "
                "compatible estimator."
            ) from exc

    def task(self, model: Any) -> Task:
        from sklearn.base import is_classifier

        return "classification" if is_classifier(model) else "regression"

    def classes(self, model: Any) -> list[Any] | None:
        if self.task(model) != "classification":
            return None
        return [plain(c) for c in model.classes_]

    def frameworks(self, model: Any) -> tuple[str, ...]:
        roots = {module_root(model)}
        if hasattr(model, "get_params"):
            try:
                params = model.get_params(deep=True)
            except TypeError:
                params = {}
            roots.update(module_root(v) for v in params.values() if hasattr(v, "fit"))
        return tuple(sorted(_DISTRIBUTIONS[r] for r in roots if r in _DISTRIBUTIONS))

    def export_onnx(
        self, model: Any, X_sample: pd.DataFrame, X_eval: pd.DataFrame | None, *, task: Task
    ) -> OnnxExport:
        reason = non_numeric_reason(self.supports, X_sample) if self.numeric_only else None
        if reason is not None:
            n_rows = len(X_sample if X_eval is None else X_eval)
            return OnnxExport.none(reason, n_rows, "float")
        # A pipeline ending in an XGBoost or LightGBM estimator converts too: _onnx registers
        # onnxmltools' converters for the frameworks the process has imported.
        return export_onnx(model, X_sample, X_eval, task=task)


def plain(value: Any) -> Any:
    """numpy scalars as plain Python values (JSON-safe)."""
    return value.item() if isinstance(value, np.generic) else value
