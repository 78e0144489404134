"""A model loaded from a verified archive, ready to predict."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from shipyard.dataset import Schema
from shipyard.packaging._archive import Archive
from shipyard.packaging._flavors import get_flavor
from shipyard.packaging._manifest import Manifest
from shipyard.packaging._onnx import flat_predictions


class LoadedModel:
    """A verified model version: the native model plus its manifest and schema.

    ``predict``/``predict_proba`` check and coerce the input against the archive's schema
    first (raising ``SchemaViolation`` that lists every bad field), unless ``validate=False``.
    The native estimator is ``.model``.
    """

    def __init__(self, archive: Archive) -> None:
        self.archive = archive

    @cached_property
    def model(self) -> Any:
        return get_flavor(self.manifest.flavor).load(self.archive.members)

    @property
    def manifest(self) -> Manifest:
        return self.archive.manifest

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def digest(self) -> str:
        return self.archive.digest

    @property
    def schema(self) -> Schema:
        return self.archive.schema

    @property
    def classes(self) -> list[Any] | None:
        return self.manifest.classes

    @property
    def reference_profile(self) -> dict[str, Any]:
        return self.archive.reference_profile

    def prepare(self, X: pd.DataFrame, *, validate: bool = True) -> Any:
        """The model's input for ``X``: schema-checked, coerced, and an array if trained so."""
        frame = self.schema.coerce(X) if validate else X
        return frame.to_numpy() if self.manifest.input_kind == "array" else frame

    def predict(self, X: pd.DataFrame, *, validate: bool = True) -> np.ndarray:
        return flat_predictions(self.model.predict(self.prepare(X, validate=validate)))

    def predict_proba(self, X: pd.DataFrame, *, validate: bool = True) -> np.ndarray | None:
        if self.manifest.task != "classification" or not hasattr(self.model, "predict_proba"):
            return None
        return np.asarray(self.model.predict_proba(self.prepare(X, validate=validate)))

    def __repr__(self) -> str:
        return f"<LoadedModel {self.name} v{self.version} {self.manifest.flavor}>"
