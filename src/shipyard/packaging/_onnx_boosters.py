"""XGBoost and LightGBM converters for skl2onnx, from onnxmltools.

skl2onnx converts scikit-learn models and pipelines only; onnxmltools has converters for
XGBoost's and LightGBM's scikit-learn estimators. ``register_booster_converters`` registers
them with skl2onnx (``update_registered_converter``, as skl2onnx documents for third-party
models), so that ``export_onnx`` converts an ``XGBClassifier`` alone or at the end of a
pipeline like any scikit-learn estimator. Only frameworks already imported are registered:
a model that holds an XGBoost estimator has imported xgboost, and nobody else pays for it.
"""

from __future__ import annotations

import copy
import functools
import sys
from collections.abc import Callable
from typing import Any

import pandas as pd

#: Options of the classifier converters (``zipmap=False``: probabilities as one tensor).
_CLASSIFIER_OPTIONS: dict[str, Any] = {"nocl": [True, False], "zipmap": [True, False, "columns"]}


def register_booster_converters() -> list[str]:
    """Register the onnxmltools converters of the boosting frameworks that are imported.

    Idempotent (each registration runs once per process: skl2onnx's converter table is
    process-wide by design); returns the frameworks registered. Raises ``ImportError`` when
    one is needed and onnxmltools is not installed.
    """
    registered = []
    for framework, register in (("xgboost", _register_xgboost), ("lightgbm", _register_lightgbm)):
        if framework in sys.modules:
            register()
            registered.append(framework)
    return registered


def non_numeric_reason(framework: str, X: pd.DataFrame) -> str | None:
    """Why a bare booster fed ``X`` gets no ONNX export, or ``None`` when every column is a
    number: onnxmltools' converters take one numeric matrix (no categorical columns)."""
    other = [
        str(column)
        for column, dtype in X.dtypes.items()
        if not (pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype))
    ]
    if not other:
        return None
    return (
        f"onnxmltools converts {framework} models on numeric columns only; this one takes "
        f"{other} (one-hot encode them in a pipeline before it for an ONNX export), so it is "
        "served with the native runtime"
    )


@functools.cache
def _register_xgboost() -> None:
    import xgboost
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    converter = _without_feature_names(convert_xgboost)
    update_registered_converter(
        xgboost.XGBClassifier,
        "XGBoostXGBClassifier",
        calculate_linear_classifier_output_shapes,
        converter,
        options=_CLASSIFIER_OPTIONS,
    )
    update_registered_converter(
        xgboost.XGBRegressor,
        "XGBoostXGBRegressor",
        calculate_linear_regressor_output_shapes,
        converter,
    )


@functools.cache
def _register_lightgbm() -> None:
    import lightgbm
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    update_registered_converter(
        lightgbm.LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm,
        options=_CLASSIFIER_OPTIONS,
    )
    update_registered_converter(
        lightgbm.LGBMRegressor,
        "LightGbmLGBMRegressor",
        calculate_linear_regressor_output_shapes,
        convert_lightgbm,
        options={"split": None},
    )


def _without_feature_names(convert: Callable[..., None]) -> Callable[..., None]:
    """The XGBoost converter, fed a copy of the model whose booster has no feature names.

    An XGBoost model fitted on a DataFrame keeps its column names, and onnxmltools 1.16 reads
    the trees' split features back as ``f<index>`` only ("Unable to interpret 'age', feature
    names should follow pattern 'f%d'"). Without names the booster dumps ``f0, f1, ...`` in
    the same column order; the user's model is left untouched.
    """

    def converter(scope: Any, operator: Any, container: Any) -> None:
        model = operator.raw_operator
        if model.get_booster().feature_names is not None:
            model = copy.deepcopy(model)
            model.get_booster().feature_names = None
            operator.raw_operator = model
        convert(scope, operator, container)

    return converter
