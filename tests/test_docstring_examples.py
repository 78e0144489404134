"""The examples in every module's docstrings run (``# doctest: +SKIP`` marks the ones that need
a store or a fitted model). Modules are discovered, so a new one is checked too; each package's
``__all__`` is checked by tests/test_exported_members.py."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pandas as pd
import pytest

import shipyard


def _modules() -> list[str]:
    found = pkgutil.walk_packages(shipyard.__path__, "shipyard.")
    skip = ("shipyard.store.migrations", "shipyard.__main__")
    return ["shipyard", *sorted(n for _, n, _ in found if not n.startswith(skip))]


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, extraglobs={"pd": pd})
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} fail"
