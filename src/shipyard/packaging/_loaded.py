"""A model loaded from a verified archive, ready to predict."""

from __future__ import annotations

import platform
import re
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from shipyard.dataset import Schema
from shipyard.errors import ModelUnavailable, ShipyardError
from shipyard.packaging._archive import Archive
from shipyard.packaging._code_import import PREFIX, code_in_place
from shipyard.packaging._environment import package_versions
from shipyard.packaging._flavors import get_flavor
from shipyard.packaging._manifest import Manifest
from shipyard.packaging._onnx import flat_predictions

#: Import names whose distribution is called otherwise (for "pip install <distribution>").
_DISTRIBUTIONS = {"sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow", "cv2": "opencv"}


class LoadedModel:
    """A verified model version: the native model plus its manifest and schema.

    ``predict``/``predict_proba`` check and coerce the input against the archive's schema
    first (raising ``SchemaViolation`` that lists every bad field), unless ``validate=False``.
    The native estimator is ``.model``.
    """

    def __init__(self, archive: Archive, *, label: str | None = None) -> None:
        self.archive = archive
        self._label = label

    @property
    def label(self) -> str:
        """How errors name this model (default ``"<name> v<version>"``)."""
        return self._label or f"{self.name} v{self.version}"

    @cached_property
    def model(self) -> Any:
        """The native model, unpickled with the archive's own code in place (raises
        ``ModelUnavailable`` with one sentence when it cannot be loaded here)."""
        return load_native(self.archive, label=self.label)

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


def load_native(archive: Archive, *, label: str) -> Any:
    """The native model of a verified ``archive``, its ``code/`` modules put in place first.

    Any failure (a module neither installed nor in the archive, a library version that reads
    the pickle differently, by-value code from another Python) is one ``ModelUnavailable``
    sentence that names what is missing and how to get it, starting with ``label``.
    """
    try:
        with code_in_place(archive.members):
            return get_flavor(archive.manifest.flavor).load(archive.members)
    except ShipyardError:
        raise
    except Exception as exc:  # unpickling can raise anything; the user gets one sentence
        raise explain_load_error(exc, archive, label) from exc


def explain_load_error(
    exc: Exception, archive: Archive, label: str, *, failing: str = "cannot be loaded"
) -> ModelUnavailable:
    """``exc`` (raised loading or first using ``archive``'s model) as one sentence:
    "<label> <failing>: <what is missing and how to get it>"."""
    return ModelUnavailable(_explain(exc, archive, f"{label} {failing}"))


def _explain(exc: Exception, archive: Archive, label: str) -> str:
    manifest = archive.manifest
    python = platform.python_version()
    if manifest.pickled_by_value and manifest.python.split(".")[:2] != python.split(".")[:2]:
        names = ", ".join(manifest.pickled_by_value[:3])
        return (
            f"{label} under Python {python}: {names} were pickled by value "
            f"under Python {manifest.python}, which is needed to load them (or move them into "
            "a module and register the model again)."
        )
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return _missing_module(_plain(exc.name), archive, label)
    detail = _plain(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    here = package_versions(tuple(manifest.frameworks))
    differ = [
        f"{name} {version} (here {here.get(name, 'not installed')})"
        for name, version in manifest.frameworks.items()
        if here.get(name) != version
    ]
    if manifest.python != python:
        differ.insert(0, f"Python {manifest.python} (here {python})")
    saved = f"it was saved with {', '.join(differ)}" if differ else "its pickle may be damaged"
    return (
        f"{label} here ({detail[:200]}); {saved}: recreate its environment "
        "from the archive's requirements.lock ('shipyard env create') and load it there."
    )


def _missing_module(name: str, archive: Archive, label: str) -> str:
    top = name.split(".")[0]
    if top in {m.split(".")[0] for m in archive.manifest.code_modules}:
        return (
            f"{label}: its code imports '{name}', which is not in its archive; "
            f"register it again with code_paths=[...] naming the file of '{name}'."
        )
    wanted = _DISTRIBUTIONS.get(top, top)
    for line in archive.members.get("requirements.lock", b"").decode(errors="replace").split():
        if _normal(line.partition("==")[0]) == _normal(wanted):
            return (
                f"{label}: it needs the package {line} (module '{name}'), which "
                f"is not installed here; pip install '{line}' (or 'shipyard env create')."
            )
    return (
        f"{label}: it needs the module '{name}', which is neither installed "
        "here nor in its archive; install the package that provides it or, if it is your own "
        f"code, register the model again with code_paths=['path/to/{top}.py']."
    )


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _plain(text: str) -> str:
    """``text`` with the archive-code package names turned back into the user's names."""
    return re.sub(rf"{PREFIX}[0-9a-f]+\.", "", text)
