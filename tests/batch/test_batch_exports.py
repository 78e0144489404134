"""The examples in ``shipyard.batch``'s docstrings run (its ``__all__`` is checked by
tests/test_exported_members.py)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import shipyard.batch as batch


def test_docstring_examples_run() -> None:
    names = ["", *(f".{info.name}" for info in pkgutil.iter_modules(batch.__path__))]
    for name in names:
        module = importlib.import_module(f"shipyard.batch{name}")
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, f"{module.__name__}: {result.failed} failing example(s)"
