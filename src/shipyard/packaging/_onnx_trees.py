"""skl2onnx tree-ensemble converters that work on today's onnx/protobuf and keep double precision.

Used by ``_onnx.export_onnx`` through ``custom_conversion_functions``: they apply to that one
conversion call only; nothing in skl2onnx is patched globally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: ai.onnx.ml opset 3: tree ensembles with double thresholds and weights.
ML_OPSET = 3
_TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
#: Tree attributes that have a double ``<name>_as_tensor`` twin in ai.onnx.ml opset 3.
_DOUBLE_ATTRS = ("nodes_values", "nodes_hitrates", "base_values", "class_weights", "target_weights")


# --- tree ensembles: the bool attribute bug and double thresholds ---------------------------


def tree_converters() -> dict[type, Callable[..., None]]:
    """skl2onnx converters for tree models, wrapped by ``_TreeContainer`` for this call only.

    Passed as ``custom_conversion_functions``, so nothing global in skl2onnx is patched.
    """
    from skl2onnx.operator_converters import decision_tree, gradient_boosting, random_forest
    from sklearn import ensemble, tree

    classifier = random_forest.convert_sklearn_random_forest_classifier
    regressor = random_forest.convert_sklearn_random_forest_regressor_converter
    stock: dict[type, Callable[..., None]] = {
        ensemble.HistGradientBoostingClassifier: classifier,
        ensemble.RandomForestClassifier: classifier,
        ensemble.ExtraTreesClassifier: classifier,
        ensemble.HistGradientBoostingRegressor: regressor,
        ensemble.RandomForestRegressor: regressor,
        ensemble.ExtraTreesRegressor: regressor,
        tree.DecisionTreeClassifier: decision_tree.convert_sklearn_decision_tree_classifier,
        tree.ExtraTreeClassifier: decision_tree.convert_sklearn_decision_tree_classifier,
        tree.DecisionTreeRegressor: decision_tree.convert_sklearn_decision_tree_regressor,
        tree.ExtraTreeRegressor: decision_tree.convert_sklearn_decision_tree_regressor,
        ensemble.GradientBoostingClassifier: (
            gradient_boosting.convert_sklearn_gradient_boosting_classifier
        ),
        ensemble.GradientBoostingRegressor: (
            gradient_boosting.convert_sklearn_gradient_boosting_regressor
        ),
    }
    return {cls: _wrap_tree_converter(convert) for cls, convert in stock.items()}


def _wrap_tree_converter(convert: Callable[..., None]) -> Callable[..., None]:
    def converter(scope: Any, operator: Any, container: Any) -> None:
        from skl2onnx.common.data_types import DoubleTensorType

        double = isinstance(operator.inputs[0].type, DoubleTensorType)
        # op_version=3 makes the forest classifier keep its thresholds in float64
        # (``attr_dtype`` in skl2onnx's random_forest.py); the others already do.
        proxy = _TreeContainer(container, scope, operator, double)
        convert(scope, operator, proxy, op_version=3 if double else 1)

    return converter


class _TreeContainer:
    """Stands in for skl2onnx's container while one tree converter runs.

    It rewrites the TreeEnsemble nodes the converter adds and forwards everything else:

    1. The bool bug. skl2onnx 1.20.0's ``add_tree_to_attribute_pairs_hist_gradient_boosting``
       (common/tree_ensemble.py) sets ``missing = False`` for leaves, a Python bool, while
       splits carry numpy uint8 from ``node["missing_go_to_left"]``. ``onnx.helper.make_attribute``
       infers INTS (bool is Integral) and extends ``AttributeProto.ints``, which protobuf 7.34+
       rejects: "Field onnx.AttributeProto.ints: Expected an int, got a boolean" (earlier
       releases warned "This will be rejected in 7.34.0"). So every HistGradientBoosting
       model failed with skl2onnx 1.20.0, onnx 1.23 and protobuf 7.36. We coerce that one
       attribute to ``int``s; test_stock_skl2onnx_still_fails_on_the_bool_attribute skips
       once skl2onnx no longer needs it.
    2. Double precision. With double inputs the converters compute thresholds and weights in
       float64 but pass them as float attributes, i.e. rounded to float32, and (but for
       RandomForestClassifier) declare the node's scores as double although TreeEnsemble*
       always outputs float, so the model does not even load. We move float64 arrays into
       the opset-3 ``*_as_tensor`` attributes and cast the float scores to the double the
       rest of the graph expects.
    """

    def __init__(self, container: Any, scope: Any, operator: Any, double: bool) -> None:
        self._container = container
        self._scope = scope
        self._operator = operator
        self._double = double

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(
        self,
        op_type: str,
        inputs: Any,
        outputs: Any,
        op_domain: str = "",
        op_version: int | None = None,
        name: str | None = None,
        **attrs: Any,
    ) -> Any:
        if op_type in _TREE_OPS:
            tracks = attrs.get("nodes_missing_value_tracks_true")
            if tracks is not None:
                attrs["nodes_missing_value_tracks_true"] = [int(v) for v in tracks]
            if self._double:
                return self._add_double_tree(op_type, inputs, outputs, op_domain, name, attrs)
        return self._container.add_node(
            op_type, inputs, outputs, op_domain=op_domain, op_version=op_version, name=name, **attrs
        )

    def _add_double_tree(
        self,
        op_type: str,
        inputs: Any,
        outputs: Any,
        op_domain: str,
        name: str | None,
        attrs: dict[str, Any],
    ) -> Any:
        from onnx import TensorProto, numpy_helper

        for key in _DOUBLE_ATTRS:
            value = attrs.get(key)
            if isinstance(value, np.ndarray) and value.dtype == np.float64:
                attrs[f"{key}_as_tensor"] = numpy_helper.from_array(value.ravel(), name=key)
                del attrs[key]
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        scores = 1 if op_type == "TreeEnsembleClassifier" else 0  # outputs: (label, scores) / (y,)
        wanted = outputs[scores]
        # skl2onnx's parser declares RandomForestClassifier probabilities as float already.
        cast = not self._declares_float(wanted)
        if cast:
            outputs[scores] = self._scope.get_unique_variable_name(f"{wanted}_float")
        node = self._container.add_node(
            op_type, inputs, outputs, op_domain=op_domain, op_version=ML_OPSET, name=name, **attrs
        )
        if cast:
            self._container.add_node(
                "Cast",
                outputs[scores],
                wanted,
                name=self._scope.get_unique_operator_name("Cast"),
                to=TensorProto.DOUBLE,
            )
        return node

    def _declares_float(self, name: str) -> bool:
        """Whether ``name`` is an output of the operator that it declares as float.

        Other names are the converter's intermediates, which it builds in the input's double.
        """
        from skl2onnx.common.data_types import FloatTensorType

        return any(
            out.full_name == name and isinstance(out.type, FloatTensorType)
            for out in self._operator.outputs
        )
