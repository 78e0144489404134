"""Every shipyard package's ``__all__`` lists exactly the public names its ``__init__`` defines
or imports (as httpx's tests/test_exported_members.py does), lazy PEP 562 names included, and
every listed name resolves. Packages are discovered, so a new one is checked too."""

from __future__ import annotations

import importlib
import pkgutil
import types
import typing

import pytest

import shipyard

#: Dunder names a package may list in ``__all__``.
DUNDERS = {"__version__"}
#: The type of ``from __future__ import annotations``' binding.
FUTURE_FEATURE = type(importlib.import_module("__future__").annotations)


def _packages() -> list[str]:
    found = pkgutil.walk_packages(shipyard.__path__, "shipyard.")
    names = [
        n for _, n, is_pkg in found if is_pkg and not any(p.startswith("_") for p in n.split("."))
    ]
    return ["shipyard", *sorted(names)]


def _public(module: types.ModuleType) -> set[str]:
    """Names a user gets from ``module``: ``dir()`` (which lists the lazy names), less private
    names, modules (subpackages, ``import sys``), ``__future__`` features and typing helpers
    (``TYPE_CHECKING``, ``Any``)."""
    names = set()
    for name in dir(module):
        if name.startswith("_"):
            continue
        value = getattr(module, name)
        if isinstance(value, types.ModuleType | FUTURE_FEATURE):
            continue
        if getattr(typing, name, object()) is value:
            continue
        names.add(name)
    return names


@pytest.mark.parametrize("name", _packages())
def test_all_lists_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    init = f"{name.replace('.', '/')}/__init__.py"
    exported = list(getattr(module, "__all__", []))
    assert len(exported) == len(set(exported)), f"{init}: a name is listed twice in __all__"
    for listed in exported:  # lazy names load here: each must resolve
        assert getattr(module, listed, None) is not None, f"{init}: {listed!r} does not resolve"
    public = _public(module)
    missing = sorted(public - set(exported))
    assert not missing, f"Add {missing} to __all__ in {init}, or make them private (_name)"
    extra = sorted(set(exported) - DUNDERS - public)
    assert not extra, f"Remove {extra} from __all__ in {init}: it neither defines nor imports them"


def test_the_packages_are_found() -> None:
    found = _packages()
    assert {"shipyard", "shipyard.client", "shipyard.cli", "shipyard.demo"} <= set(found)
    assert {"shipyard.registry", "shipyard.monitoring", "shipyard.store"} <= set(found)
