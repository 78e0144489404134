"""The LightGBM flavor: LightGBM's scikit-learn estimators, pickled with joblib (as LightGBM
documents). ONNX through onnxmltools' LightGBM converter (see ``_onnx_boosters``)."""

from __future__ import annotations

from typing import Any, ClassVar

from shipyard.packaging._flavor_sklearn import SklearnFlavor
from shipyard.packaging._pickled import module_root


class LightGBMFlavor(SklearnFlavor):
    """LightGBM's scikit-learn estimators (``LGBMClassifier``, ``LGBMRegressor``)."""

    name: ClassVar[str] = "lightgbm"
    framework: ClassVar[str] = "lightgbm"
    supports: ClassVar[str] = "LightGBM"
    numeric_only: ClassVar[bool] = True

    def handles(self, model: Any) -> bool:
        return module_root(model) == "lightgbm"
