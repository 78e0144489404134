"""The CatBoost flavor: ``CatBoostClassifier`` and ``CatBoostRegressor`` in CatBoost's own
``.cbm`` format, exported to ONNX by CatBoost itself where it can (numeric features only).

CatBoost's ONNX export gives one float input ``features`` ``[N, n_features]`` and, for a
classifier, a ``ZipMap`` of probabilities (a list of dicts); the ZipMap is dropped so that the
probabilities come out as one ``[N, n_classes]`` tensor, as Shipyard's runtime reads them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from typing import Any, ClassVar

import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.packaging._flavor_sklearn import plain
from shipyard.packaging._manifest import Task
from shipyard.packaging._onnx import (
    COLUMNS_KEY,
    OnnxExport,
    OnnxInput,
    verify_onnx,
)
from shipyard.packaging._pickled import module_root

_MODEL_MEMBER = "model/model.cbm"
_META_MEMBER = "model/catboost.json"


class CatBoostFlavor:
    """CatBoost's scikit-learn-style estimators (``CatBoostClassifier``, ``CatBoostRegressor``)."""

    name: ClassVar[str] = "catboost"
    framework: ClassVar[str] = "catboost"
    supports: ClassVar[str] = "CatBoost"

    def handles(self, model: Any) -> bool:
        return module_root(model) == "catboost" and hasattr(model, "save_model")

    def check_fitted(self, model: Any) -> None:
        if not model.is_fitted():
            raise InvalidInput(
                f"The {type(model).__name__} is not fitted: call fit(X, y) before registering it."
            )

    def task(self, model: Any) -> Task:
        if getattr(model, "_estimator_type", None) == "classifier":
            return "classification"
        if type(model).__name__ == "CatBoostRegressor":
            return "regression"
        raise InvalidInput(
            f"Shipyard packages CatBoostClassifier and CatBoostRegressor models; got a "
            f"{type(model).__name__}: fit one of those two instead."
        )

    def classes(self, model: Any) -> list[Any] | None:
        if self.task(model) != "classification":
            return None
        return [plain(c) for c in model.classes_]

    def frameworks(self, model: Any) -> tuple[str, ...]:
        return ("catboost",)

    def save(self, model: Any) -> dict[str, bytes]:
        meta = {"class": type(model).__name__}
        return {
            _MODEL_MEMBER: _saved(model, "cbm"),
            _META_MEMBER: json.dumps(meta).encode(),
        }

    def load(self, members: Mapping[str, bytes]) -> Any:
        import catboost

        meta = json.loads(members[_META_MEMBER])
        model = getattr(catboost, meta["class"])()
        model.load_model(blob=bytes(members[_MODEL_MEMBER]))
        return model

    def export_onnx(
        self, model: Any, X_sample: pd.DataFrame, X_eval: pd.DataFrame | None, *, task: Task
    ) -> OnnxExport:
        X_eval = X_sample if X_eval is None else X_eval
        categorical = model.get_cat_feature_indices()
        text: list[int] = getattr(model, "get_text_feature_indices", list)()
        names = list(model.feature_names_)
        if categorical or text:
            which = [names[i] for i in [*categorical, *text]]
            reason = (
                f"CatBoost exports ONNX only for numeric features; this model has categorical "
                f"or text features {which}, so it is served with the native runtime"
            )
            return OnnxExport.none(reason, len(X_eval), "float")
        if [str(c) for c in X_sample.columns] != [str(n) for n in names]:
            reason = (
                f"the frame's columns {list(X_sample.columns)} are not the model's features "
                f"{names} in order, which CatBoost's ONNX export needs"
            )
            return OnnxExport.none(reason, len(X_eval), "float")
        try:
            model_bytes = _onnx_graph(_saved(model, "onnx"), names)
        except Exception as exc:  # CatBoostError or onnx's own: the export is not possible
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            reason = f"CatBoost's ONNX export failed: {type(exc).__name__}: {first}"
            return OnnxExport.none(reason, len(X_eval), "float")
        inputs = (OnnxInput("features", None, "float"),)
        return verify_onnx(model, model_bytes, inputs, X_eval, task=task, precision="float")


def _saved(model: Any, fmt: str) -> bytes:
    """``model.save_model`` in format ``fmt``, as bytes (CatBoost writes files only)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"model.{fmt}")
        model.save_model(path, format=fmt)
        with open(path, "rb") as file:
            return file.read()


def _onnx_graph(raw: bytes, columns: list[str]) -> bytes:
    """CatBoost's ONNX model with the ZipMap removed and the column order in its metadata."""
    import onnx

    graph_model = onnx.load_from_string(raw)
    graph = graph_model.graph
    zipmaps = [node for node in graph.node if node.op_type == "ZipMap"]
    for node in zipmaps:
        (tensor,) = node.input
        (output,) = node.output
        graph.node.remove(node)
        for producer in graph.node:
            for i, name in enumerate(producer.output):
                if name == tensor:
                    producer.output[i] = output
        for value in graph.output:
            if value.name == output:
                value.CopyFrom(
                    onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, [None, None])
                )
    entry = graph_model.metadata_props.add()
    entry.key, entry.value = COLUMNS_KEY, json.dumps(columns)
    return bytes(graph_model.SerializeToString())
