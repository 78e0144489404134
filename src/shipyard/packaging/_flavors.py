"""Model flavors: how each framework's models are saved, loaded and described.

A flavor is one small class following the ``Flavor`` protocol, in its own
``_flavor_<name>.py``, registered in ``FLAVORS`` (most specific first). The flavor decides
everything framework-specific about a model: whether it handles it, whether it is fitted, its
task and classes, the frameworks to record, how it is stored, and its ONNX export (or why there
is none). Adding a framework is one new file plus one line in ``FLAVORS``;
tests/packaging/test_flavor_contract.py runs every flavor through the same checks.

    >>> from sklearn.linear_model import LinearRegression
    >>> flavor_for(LinearRegression()).name
    'sklearn'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.packaging._flavor_catboost import CatBoostFlavor
from shipyard.packaging._flavor_lightgbm import LightGBMFlavor
from shipyard.packaging._flavor_python import PythonFlavor
from shipyard.packaging._flavor_river import RiverFlavor
from shipyard.packaging._flavor_sklearn import SklearnFlavor
from shipyard.packaging._flavor_xgboost import XGBoostFlavor
from shipyard.packaging._manifest import Task
from shipyard.packaging._onnx import OnnxExport


@runtime_checkable
class Flavor(Protocol):
    """How a framework's models are checked, described, saved, loaded and exported."""

    name: ClassVar[str]
    #: Distribution whose version is recorded in the manifest.
    framework: ClassVar[str]
    #: What this flavor packages, for the message naming what Shipyard supports.
    supports: ClassVar[str]

    def handles(self, model: Any) -> bool:
        """True when this flavor can save ``model``."""
        ...

    def check_fitted(self, model: Any) -> None:
        """Raise ``InvalidInput`` (one sentence) unless ``model`` is fitted."""
        ...

    def task(self, model: Any) -> Task:
        """``"classification"`` or ``"regression"``."""
        ...

    def classes(self, model: Any) -> list[Any] | None:
        """A classifier's classes, in the order of its probability columns (plain Python
        values); ``None`` for a regressor. Raises ``InvalidInput`` when they cannot be known."""
        ...

    def frameworks(self, model: Any) -> tuple[str, ...]:
        """Distributions whose versions the manifest records (e.g. a pipeline ending in an
        XGBClassifier gives ``("scikit-learn", "xgboost")``)."""
        ...

    def save(self, model: Any) -> dict[str, bytes]:
        """The archive members (paths under ``model/``) that hold ``model``."""
        ...

    def load(self, members: Mapping[str, bytes]) -> Any:
        """Rebuild the model from the members ``save`` wrote (checksums already verified)."""
        ...

    def export_onnx(
        self, model: Any, X_sample: pd.DataFrame, X_eval: pd.DataFrame | None, *, task: Task
    ) -> OnnxExport:
        """The model as ONNX with its parity figures, or an export whose ``error`` says why
        there is none (never raises for a conversion problem)."""
        ...


#: Built-in flavors, most specific first; ``flavor_for`` takes the first that handles a model.
FLAVORS: list[Flavor] = [
    XGBoostFlavor(),
    LightGBMFlavor(),
    CatBoostFlavor(),
    RiverFlavor(),  # before sklearn: its batch wrappers look like estimators
    SklearnFlavor(),
    PythonFlavor(),
]


def flavor_for(model: Any) -> Flavor:
    """The flavor that packages ``model``; ``InvalidInput`` naming what is supported if none."""
    for flavor in FLAVORS:
        if flavor.handles(model):
            return flavor
    supported = [flavor.supports for flavor in FLAVORS]
    raise InvalidInput(
        f"Shipyard cannot package a {type(model).__module__}.{type(model).__name__}: it "
        f"packages {', '.join(supported[:-1])} and {supported[-1]}."
    )


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name`` (as the manifest records it)."""
    for flavor in FLAVORS:
        if flavor.name == name:
            return flavor
    raise InvalidInput(
        f"Unknown model flavor '{name}'; this Shipyard knows "
        f"{', '.join(f.name for f in FLAVORS)}. Upgrade Shipyard to load it."
    )
