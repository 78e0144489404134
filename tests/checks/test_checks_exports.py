"""``shipyard.checks.__all__`` lists exactly its public names, and its examples run."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import shipyard.checks as checks


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in dir(checks) if not name.startswith("_")}
    modules = {info.name for info in pkgutil.iter_modules(checks.__path__)}
    extra = sorted(public - set(checks.__all__) - modules)
    assert not extra, f"Add {extra} to __all__ in shipyard/checks/__init__.py, or rename them"
    missing = sorted(set(checks.__all__) - public)
    assert not missing, f"Remove {missing} from __all__: they are not defined"


def test_docstring_examples_run() -> None:
    names = ["", *(f".{info.name}" for info in pkgutil.iter_modules(checks.__path__))]
    for name in names:
        module = importlib.import_module(f"shipyard.checks{name}")
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, f"{module.__name__}: {result.failed} failing example(s)"
