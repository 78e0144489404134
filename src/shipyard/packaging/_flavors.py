"""Model flavors: how each framework's models are saved, loaded and described.

A flavor is one small class following the ``Flavor`` protocol, registered in ``FLAVORS``
(most specific first). Adding a framework is one new file plus one line here.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import joblib

from shipyard.errors import InvalidInput
from shipyard.packaging._flavor_river import RiverFlavor
from shipyard.packaging._code import dump_model


@runtime_checkable
class Flavor(Protocol):
    """How a framework's models are saved into and loaded from an archive."""

    name: ClassVar[str]
    #: Distribution whose version is recorded in the manifest.
    framework: ClassVar[str]
    #: Whether skl2onnx may convert this flavor's models.
    onnx: ClassVar[bool]

    def handles(self, model: Any) -> bool:
        """True when this flavor can save ``model``."""
        ...

    def save(self, model: Any) -> dict[str, bytes]:
        """The archive members (paths under ``model/``) that hold ``model``."""
        ...

    def load(self, members: Mapping[str, bytes]) -> Any:
        """Rebuild the model from the members ``save`` wrote (checksums already verified)."""
        ...


def _module_root(obj: Any) -> str:
    return type(obj).__module__.split(".", 1)[0]


def _joblib_bytes(model: Any) -> bytes:
    # joblib's pickle, or cloudpickle's when a class/function must go by value (``_code``).
    return dump_model(model)


class SklearnFlavor:
    """scikit-learn estimators and pipelines (pickled with joblib)."""

    name: ClassVar[str] = "sklearn"
    framework: ClassVar[str] = "scikit-learn"
    onnx: ClassVar[bool] = True

    def handles(self, model: Any) -> bool:
        return hasattr(model, "get_params") and hasattr(model, "fit")

    def save(self, model: Any) -> dict[str, bytes]:
        return {"model/model.joblib": _joblib_bytes(model)}

    def load(self, members: Mapping[str, bytes]) -> Any:
        return joblib.load(io.BytesIO(members["model/model.joblib"]))


class XGBoostFlavor:
    """XGBoost's scikit-learn estimators, saved in XGBoost's own portable UBJSON format."""

    name: ClassVar[str] = "xgboost"
    framework: ClassVar[str] = "xgboost"
    onnx: ClassVar[bool] = False

    def handles(self, model: Any) -> bool:
        return _module_root(model) == "xgboost" and hasattr(model, "save_model")

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


class LightGBMFlavor:
    """LightGBM's scikit-learn estimators (pickled with joblib, as LightGBM documents)."""

    name: ClassVar[str] = "lightgbm"
    framework: ClassVar[str] = "lightgbm"
    onnx: ClassVar[bool] = False

    def handles(self, model: Any) -> bool:
        return _module_root(model) == "lightgbm"

    def save(self, model: Any) -> dict[str, bytes]:
        return {"model/model.joblib": _joblib_bytes(model)}

    def load(self, members: Mapping[str, bytes]) -> Any:
        return joblib.load(io.BytesIO(members["model/model.joblib"]))


#: Built-in flavors, most specific first; ``flavor_for`` takes the first that handles a model.
FLAVORS: list[Flavor] = [XGBoostFlavor(), LightGBMFlavor(), RiverFlavor(), SklearnFlavor()]


def flavor_for(model: Any) -> Flavor:
    for flavor in FLAVORS:
        if flavor.handles(model):
            return flavor
    raise InvalidInput(
        f"Shipyard cannot package a {type(model).__module__}.{type(model).__name__}: supported "
        f"are {', '.join(f.name for f in FLAVORS)} models (scikit-learn API)."
    )


def get_flavor(name: str) -> Flavor:
    for flavor in FLAVORS:
        if flavor.name == name:
            return flavor
    raise InvalidInput(
        f"Unknown model flavor '{name}'; this Shipyard knows "
        f"{', '.join(f.name for f in FLAVORS)}. Upgrade Shipyard to load it."
    )


def frameworks_of(model: Any) -> tuple[str, ...]:
    """Distributions a (possibly nested) model's estimators come from, e.g. a Pipeline
    ending in an XGBClassifier gives ``("scikit-learn", "xgboost")``."""
    roots = {_module_root(model)}
    if hasattr(model, "get_params"):
        try:
            params = model.get_params(deep=True)
        except TypeError:
            params = {}
        roots.update(
            _module_root(v) for v in params.values() if hasattr(v, "fit") or hasattr(v, "learn_one")
        )
    names = {"sklearn": "scikit-learn", "xgboost": "xgboost", "lightgbm": "lightgbm"}
    names["river"] = "river"
    return tuple(sorted(names[r] for r in roots if r in names))
