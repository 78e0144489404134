"""The plain Python flavor: any object with a ``predict`` method (and ``predict_proba`` for
probabilities), duck-typed, as a data scientist writes a rule set or wraps another library.

Pickled with joblib; a class defined in ``__main__`` (a notebook, a script) is pickled by
value with cloudpickle so that it loads anywhere. Classes in the user's own modules are
pickled by reference, and their source travels with the archive (``_code``).

The conventions are scikit-learn's, as far as a plain object can follow them::

    class Rules:
        classes_ = ["no", "yes"]          # a classifier says its classes, in proba order

        def predict(self, X):             # labels (or values, for a regressor)
            return np.where(X["income"] > 50_000, "yes", "no")

        def predict_proba(self, X):       # optional: one column per class
            p = (X["income"] > 50_000).to_numpy(float)
            return np.column_stack([1 - p, p])

It is a classifier when it has ``classes_`` or ``predict_proba`` (and then ``classes_`` is
required), a regressor otherwise. It counts as fitted unless it has a ``fit`` method and no
attribute ending in ``_`` (scikit-learn's rule), or its ``__sklearn_is_fitted__`` says no.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.packaging._flavor_sklearn import plain
from shipyard.packaging._manifest import Task
from shipyard.packaging._onnx import OnnxExport
from shipyard.packaging._pickled import PickleStorage


class PythonFlavor(PickleStorage):
    """Plain Python objects with ``predict`` (and ``predict_proba``), duck-typed."""

    name: ClassVar[str] = "python"
    framework: ClassVar[str] = "cloudpickle"
    supports: ClassVar[str] = "plain Python objects with a predict method"

    def handles(self, model: Any) -> bool:
        return not isinstance(model, type) and callable(getattr(model, "predict", None))

    def check_fitted(self, model: Any) -> None:
        is_fitted = getattr(model, "__sklearn_is_fitted__", None)
        if callable(is_fitted):
            fitted = bool(is_fitted())
        elif callable(getattr(model, "fit", None)):
            # scikit-learn's rule: fit sets attributes ending in "_" (coef_, classes_).
            names = [*getattr(model, "__dict__", {}), *dir(type(model))]
            fitted = any(key.endswith("_") and not key.startswith("_") for key in names)
        else:
            fitted = True  # nothing to fit: a fixed rule set
        if not fitted:
            raise InvalidInput(
                f"The {type(model).__name__} is not fitted: call fit(X, y) before registering it."
            )

    def task(self, model: Any) -> Task:
        has_proba = callable(getattr(model, "predict_proba", None))
        return "classification" if has_proba or hasattr(model, "classes_") else "regression"

    def classes(self, model: Any) -> list[Any] | None:
        if self.task(model) != "classification":
            return None
        classes = getattr(model, "classes_", None)
        if classes is None:
            raise InvalidInput(
                f"The {type(model).__name__} has predict_proba but no classes_: set classes_ "
                "to the class labels, in the order of predict_proba's columns, before "
                "registering it."
            )
        try:
            values = [plain(c) for c in classes]
        except TypeError as exc:
            raise InvalidInput(
                f"The classes_ of the {type(model).__name__} must be a list of labels; got "
                f"{type(classes).__name__}."
            ) from exc
        if len(values) < 2 or len(set(map(str, values))) != len(values):
            raise InvalidInput(
                f"The classes_ of the {type(model).__name__} must list two or more distinct "
                f"labels; got {values!r}."
            )
        return values

    def frameworks(self, model: Any) -> tuple[str, ...]:
        return ("cloudpickle", "joblib")

    def export_onnx(
        self, model: Any, X_sample: pd.DataFrame, X_eval: pd.DataFrame | None, *, task: Task
    ) -> OnnxExport:
        n_rows = len(X_sample if X_eval is None else X_eval)
        reason = (
            "plain Python models have no ONNX export (their predict is arbitrary code), so "
            "they are served with the native runtime"
        )
        return OnnxExport.none(reason, n_rows)
