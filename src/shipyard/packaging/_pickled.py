"""Pickled models: joblib, or cloudpickle by value for what cannot be imported by name.

A class defined in a notebook or a script lives in ``__main__``; pickle stores only its name,
so the model cannot be loaded anywhere else. cloudpickle stores such classes (and functions)
by value, and everything importable by reference, as joblib does::

    members = pickle_members(model)  # {"model/model.joblib": ...} or {"model/model.pkl": ...}
    same = unpickle_members(members)
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from typing import Any

import joblib

from shipyard.packaging._code import scan_model

#: The member of a model pickled with joblib (the usual case).
JOBLIB_MEMBER = "model/model.joblib"
#: The member of a model pickled by value with cloudpickle (it references ``__main__``).
CLOUDPICKLE_MEMBER = "model/model.pkl"


def module_root(obj: Any) -> str:
    """The top-level package an object's class comes from (``"sklearn"``, ``"xgboost"``)."""
    return type(obj).__module__.split(".", 1)[0]


def pickle_members(model: Any) -> dict[str, bytes]:
    """The archive member holding ``model``: joblib, or cloudpickle when it needs ``__main__``."""
    if scan_model(model).by_value:  # a notebook class, a lambda, a local class
        import cloudpickle

        return {CLOUDPICKLE_MEMBER: cloudpickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)}
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return {JOBLIB_MEMBER: buffer.getvalue()}


class PickleStorage:
    """``save``/``load`` of a flavor whose models are pickled (``pickle_members``)."""

    def save(self, model: Any) -> dict[str, bytes]:
        return pickle_members(model)

    def load(self, members: Mapping[str, bytes]) -> Any:
        return unpickle_members(members)


def unpickle_members(members: Mapping[str, bytes]) -> Any:
    """The model ``pickle_members`` stored (checksums already verified by the archive)."""
    if CLOUDPICKLE_MEMBER in members:
        # cloudpickle's output is a plain pickle that calls cloudpickle's helpers on load.
        return pickle.loads(members[CLOUDPICKLE_MEMBER])
    return joblib.load(io.BytesIO(members[JOBLIB_MEMBER]))
