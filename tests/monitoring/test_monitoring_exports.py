"""``shipyard.monitoring.__all__`` lists exactly its public names, and its examples run."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import shipyard.monitoring as monitoring


def test_all_lists_exactly_the_public_names() -> None:
    # dir(): the names loaded on first use (PEP 562) count; typing helpers do not.
    public = {name for name in dir(monitoring) if not name.startswith("_")}
    public -= {"TYPE_CHECKING", "Any"}
    modules = {info.name for info in pkgutil.iter_modules(monitoring.__path__)}
    extra = sorted(public - set(monitoring.__all__) - modules)
    assert not extra, f"Add {extra} to __all__ in shipyard/monitoring/__init__.py, or rename them"
    missing = sorted(set(monitoring.__all__) - public)
    assert not missing, f"Remove {missing} from __all__: they are not defined"


def test_docstring_examples_run() -> None:
    names = ["", *(f".{info.name}" for info in pkgutil.iter_modules(monitoring.__path__))]
    for name in names:
        module = importlib.import_module(f"shipyard.monitoring{name}")
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, f"{module.__name__}: {result.failed} failing example(s)"
