"""A skl2onnx converter for ``SimpleImputer`` built from standard ONNX operators.

skl2onnx 1.20 converts a numeric ``SimpleImputer`` to ai.onnx.ml's ``Imputer``, whose
``imputed_value_floats`` are float32 and which onnxruntime implements for float tensors only:
a pipeline fed double inputs does not load, and the float fallback can fail the parity check
(a HistGradientBoosting after a median imputer moved probabilities by 0.49: the float32
median and inputs land on the other side of a split). Its string branch refuses the default
``missing_values=np.nan``, so ``SimpleImputer(strategy="most_frequent")`` before a
``OneHotEncoder`` did not convert at all.

Here a missing value is filled with ``Where(mask, statistics_, X)`` in the input's own type:

- double or float columns: ``mask = IsNaN(X)`` (or ``Equal(X, missing_values)`` for a number
  such as ``-1``); ``add_indicator=True`` appends ``Cast(Gather(mask, indicator_.features_))``;
- string columns: ``mask = Equal(X, "")``, since the predictor feeds a missing string (None,
  NaN) as ``""`` (``OnnxPredictor.make_feed``), or ``Equal(X, missing_values)`` for a string
  marker. Two cases differ from scikit-learn, and the archive's parity check reports them
  when the evaluation rows hold one: a literal ``""`` is imputed here and kept there, and
  ``None`` in an object column is not missing for scikit-learn (its test is ``x != x``), so
  train on NaN for missing strings (pandas' ``str`` dtype and ``read_csv`` do);
- columns scikit-learn drops (no observed value at fit, ``keep_empty_features=False``) are
  dropped with ``Gather`` as well.

``imputer_converters`` returns the converter and shape calculator for one ``convert_sklearn``
call (``custom_conversion_functions`` / ``custom_shape_calculators``): nothing in skl2onnx is
patched globally. Integer inputs keep skl2onnx's own converter (no NaN in an int64 tensor).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

#: The string the predictor feeds for a missing category (see OnnxPredictor.make_feed).
MISSING_STRING = ""


def imputer_converters() -> tuple[dict[type, Callable[..., None]], dict[type, Callable[..., None]]]:
    """``(converters, shape_calculators)`` for ``SimpleImputer``, to merge into the
    ``custom_conversion_functions`` and ``custom_shape_calculators`` of ``convert_sklearn``."""
    from sklearn.impute import SimpleImputer

    return {SimpleImputer: _convert_simple_imputer}, {SimpleImputer: _imputer_output_shape}


def _kept_columns(imputer: Any) -> np.ndarray:
    """Indices of the input columns scikit-learn's ``transform`` returns (before indicators)."""
    statistics = imputer.statistics_
    if imputer.keep_empty_features:
        return np.arange(len(statistics))
    # Same test as scikit-learn's _get_mask(statistics, np.nan), which works on object arrays.
    return np.flatnonzero([not _is_nan(value) for value in statistics])


def _indicator_columns(imputer: Any) -> np.ndarray | None:
    """Input columns whose missing-value indicator is appended, or ``None`` without one."""
    indicator = getattr(imputer, "indicator_", None)
    return None if indicator is None else np.asarray(indicator.features_, dtype=np.int64)


def _imputer_output_shape(operator: Any) -> None:
    """Same tensor type as the inputs; kept columns plus indicator columns."""
    from skl2onnx.common.utils import check_input_and_output_numbers

    check_input_and_output_numbers(operator, input_count_range=[1, None], output_count_range=1)
    input_type = operator.inputs[0].type
    for variable in operator.inputs[1:]:
        if type(variable.type) is not type(input_type):
            raise RuntimeError(
                "SimpleImputer's inputs must share one type; got "
                f"{type(input_type).__name__} and {type(variable.type).__name__}."
            )
    imputer = operator.raw_operator
    indicator = _indicator_columns(imputer)
    width = len(_kept_columns(imputer)) + (0 if indicator is None else len(indicator))
    operator.outputs[0].type = type(input_type)([operator.inputs[0].get_first_dimension(), width])


def _convert_simple_imputer(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer

    input_type = operator.inputs[0].type
    if isinstance(input_type, (DoubleTensorType, FloatTensorType)):
        _Graph(scope, operator, container).numeric(
            np.float64 if isinstance(input_type, DoubleTensorType) else np.float32
        )
    elif isinstance(input_type, StringTensorType):
        _Graph(scope, operator, container).strings()
    else:
        convert_sklearn_imputer(scope, operator, container)


class _Graph:
    """The nodes of one imputer: mask, fill, drop empty columns, append indicators."""

    def __init__(self, scope: Any, operator: Any, container: Any) -> None:
        self.scope = scope
        self.operator = operator
        self.container = container
        self.imputer = operator.raw_operator

    def numeric(self, dtype: type[np.floating[Any]]) -> None:
        from onnx.helper import np_dtype_to_tensor_dtype

        proto = np_dtype_to_tensor_dtype(np.dtype(dtype))
        marker = self.imputer.missing_values
        if not isinstance(marker, numbers.Real):
            raise NotImplementedError(
                f"SimpleImputer(missing_values={marker!r}) on numeric columns has no ONNX "
                "converter: use a number or np.nan."
            )
        X = self._concatenated()
        mask = self._name("missing")
        if math.isnan(marker):
            self.container.add_node("IsNaN", [X], [mask], name=self._op("IsNaN"))
        else:
            value = self._constant("marker", proto, [1], [float(marker)])
            self.container.add_node("Equal", [X, value], [mask], name=self._op("Equal"))
        statistics = np.asarray(self.imputer.statistics_, dtype=dtype)
        indicator = _indicator_columns(self.imputer)
        if indicator is None:
            self._fill(X, mask, proto, statistics.tolist(), self.operator.outputs[0].full_name)
            return
        filled = self._fill(X, mask, proto, statistics.tolist(), self._name("imputed"))
        flags = self._gather(mask, indicator, self._name("indicator_mask"))
        as_numbers = self._name("indicator")
        self.container.add_node("Cast", [flags], [as_numbers], name=self._op("Cast"), to=proto)
        self.container.add_node(
            "Concat",
            [filled, as_numbers],
            [self.operator.outputs[0].full_name],
            name=self._op("Concat"),
            axis=1,
        )

    def strings(self) -> None:
        from onnx import TensorProto

        if _indicator_columns(self.imputer) is not None:
            raise NotImplementedError(
                "SimpleImputer(add_indicator=True) on string columns has no ONNX converter "
                "(scikit-learn mixes True/False into the strings); impute them without it."
            )
        marker = self.imputer.missing_values
        if _is_nan(marker) or marker is None:
            marker = MISSING_STRING
        elif not isinstance(marker, str):
            raise NotImplementedError(
                f"SimpleImputer(missing_values={marker!r}) on string columns has no ONNX "
                "converter: use np.nan or a string."
            )
        X = self._concatenated()
        value = self._constant("marker", TensorProto.STRING, [1], [marker])
        mask = self._name("missing")
        self.container.add_node("Equal", [X, value], [mask], name=self._op("Equal"))
        # Dropped columns' statistics are NaN: any string will do, they are gathered away.
        statistics = [
            MISSING_STRING if _is_nan(value) else str(value) for value in self.imputer.statistics_
        ]
        self._fill(X, mask, TensorProto.STRING, statistics, self.operator.outputs[0].full_name)

    def _fill(self, X: str, mask: str, proto: int, statistics: list[Any], output: str) -> str:
        """``Where(mask, statistics, X)``, without the columns scikit-learn drops."""
        fill = self._constant("statistics", proto, [1, len(statistics)], statistics)
        kept = _kept_columns(self.imputer)
        if len(kept) == len(statistics):
            self.container.add_node("Where", [mask, fill, X], [output], name=self._op("Where"))
            return output
        imputed = self._name("imputed_all")
        self.container.add_node("Where", [mask, fill, X], [imputed], name=self._op("Where"))
        return self._gather(imputed, kept, output)

    def _gather(self, X: str, columns: np.ndarray, output: str) -> str:
        from onnx import TensorProto

        indices = self._constant("columns", TensorProto.INT64, [len(columns)], columns.tolist())
        self.container.add_node("Gather", [X, indices], [output], name=self._op("Gather"), axis=1)
        return output

    def _concatenated(self) -> str:
        """The inputs as one ``[N, C]`` tensor of their own type.

        Not skl2onnx's ``concatenate_variables``: its FeatureVectorizer outputs float32
        (doubles rounded) and rejects strings.
        """
        names = [variable.full_name for variable in self.operator.inputs]
        if len(names) == 1:
            return str(names[0])
        output = self._name("concatenated")
        self.container.add_node("Concat", names, [output], name=self._op("Concat"), axis=1)
        return output

    def _constant(self, seed: str, proto: int, shape: list[int], values: list[Any]) -> str:
        name = self._name(seed)
        self.container.add_initializer(name, proto, shape, values)
        return name

    def _name(self, seed: str) -> str:
        return str(self.scope.get_unique_variable_name(seed))

    def _op(self, op_type: str) -> str:
        return str(self.scope.get_unique_operator_name(op_type))


def _is_nan(value: object) -> bool:
    return isinstance(value, (float, np.floating)) and math.isnan(value)
