"""The package's public surface: ``__all__`` is exactly what is public, and examples run."""

from __future__ import annotations

import doctest
import importlib
import inspect
from types import ModuleType

import pytest

import shipyard.dataset

MODULES = [
    "__init__",
    "_checks",
    "_convert",
    "_dtypes",
    "_files",
    "_fingerprint",
    "_profile",
    "_schema",
]


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(shipyard.dataset).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    missing = public - set(shipyard.dataset.__all__)
    assert not missing, f"add {sorted(missing)} to shipyard.dataset.__all__ or make them private"
    unknown = set(shipyard.dataset.__all__) - public
    assert not unknown, f"remove {sorted(unknown)} from shipyard.dataset.__all__"


def test_every_public_definition_has_a_docstring_with_an_example() -> None:
    for name in shipyard.dataset.__all__:
        value = getattr(shipyard.dataset, name)
        if not (inspect.isfunction(value) or inspect.isclass(value)):
            continue  # constants and type aliases (OTHER, MISSING, ColumnType) carry no docstring
        doc = inspect.getdoc(value) or ""
        assert ">>>" in doc, f"add a short example to the docstring of shipyard.dataset.{name}"


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module: str) -> None:
    name = "shipyard.dataset" if module == "__init__" else f"shipyard.dataset.{module}"
    imported = importlib.import_module(name)
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(imported, optionflags=flags, extraglobs={"pd": __import__("pandas")})
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} fail"
