"""The XGBoost flavor: XGBoost's scikit-learn estimators, in XGBoost's portable UBJSON format.

ONNX through onnxmltools' XGBoost converter (see ``_onnx_boosters``); the rest of the
scikit-learn defaults apply as they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from shipyard.packaging._flavor_sklearn import SklearnFlavor
from shipyard.packaging._pickled import module_root


class XGBoostFlavor(SklearnFlavor):
    """XGBoost's scikit-learn estimators (``XGBClassifier``, ``XGBRegressor``)."""

    name: ClassVar[str] = "xgboost"
    framework: ClassVar[str] = "xgboost"
    supports: ClassVar[str] = "XGBoost"
    numeric_only: ClassVar[bool] = True

    def handles(self, model: Any) -> bool:
        return module_root(model) == "xgboost" and hasattr(model, "save_model")

    def save(self, model: Any) -> dict[str, bytes]:
        raw = model.get_booster().save_raw(raw_format="ubj")
        meta = {"class": type(model).__name__, "params": model.get_params()}
        return {
            "model/model.ubj": bytes(raw),
            "model/xgboost.json": json.dumps(meta, default=str).encode(),
        }

    def load(self, members: Mapping[str, bytes]) -> Any:
        import xgboost

        meta = json.loads(members["model/xgboost.json"])
        model = getattr(xgboost, meta["class"])()
        model.load_model(bytearray(members["model/model.ubj"]))
        return model
