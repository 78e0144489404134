"""The examples in ``shipyard.monitoring``'s docstrings run (its ``__all__`` is checked by
tests/test_exported_members.py)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import shipyard.monitoring as monitoring


def test_docstring_examples_run() -> None:
    names = ["", *(f".{info.name}" for info in pkgutil.iter_modules(monitoring.__path__))]
    for name in names:
        module = importlib.import_module(f"shipyard.monitoring{name}")
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, f"{module.__name__}: {result.failed} failing example(s)"
