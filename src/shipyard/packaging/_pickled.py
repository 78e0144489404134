"""Pickled models: joblib, or cloudpickle by value for classes defined in ``__main__``.

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

#: The member of a model pickled with joblib (the usual case).
JOBLIB_MEMBER = "model/model.joblib"
#: The member of a model pickled by value with cloudpickle (it references ``__main__``).
CLOUDPICKLE_MEMBER = "model/model.pkl"


def module_root(obj: Any) -> str:
    """The top-level package an object's class comes from (``"sklearn"``, ``"xgboost"``)."""
    return type(obj).__module__.split(".", 1)[0]


def references_main(model: Any) -> bool:
    """Whether pickling ``model`` by reference would name something in ``__main__``."""
    pickler = _MainFinder(_Discard(), protocol=pickle.HIGHEST_PROTOCOL)
    try:
        pickler.dump(model)
    except (pickle.PicklingError, TypeError, AttributeError):
        return True  # e.g. a lambda: only cloudpickle can store it
    return pickler.found


class _Discard:
    """A file that forgets what is written: the scan needs the objects, not the bytes."""

    def write(self, data: bytes) -> int:
        return len(data)


class _MainFinder(pickle.Pickler):
    """A pickler that notes whether any object, class or function it saves is ``__main__``'s."""

    found = False

    def persistent_id(self, obj: Any) -> None:
        # Called for every object before it is saved, classes and functions included.
        owner = obj if isinstance(obj, type) or callable(obj) else type(obj)
        if getattr(owner, "__module__", None) == "__main__":
            self.found = True
        return None


def pickle_members(model: Any) -> dict[str, bytes]:
    """The archive member holding ``model``: joblib, or cloudpickle when it needs ``__main__``."""
    if references_main(model):
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
