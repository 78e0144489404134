"""The layering rules that import-linter cannot state, checked on grimp's import graph.

``lint-imports`` (the ``[tool.importlinter]`` contracts in pyproject.toml, run by .ci/run)
keeps the layers in order: a package imports only packages below it, so no cycles. This test
adds what a layers contract does not see:

- no module imports another package's private ``_module`` (use the package's public names);
- the prediction log is a package of its own, not a corner of serving;
- the demo is a top-layer package, not a module beside ``errors`` and ``settings``.

Function-level and ``TYPE_CHECKING`` imports count as imports.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

import shipyard

ROOT = Path(shipyard.__file__).parent
# Private helpers of the root package itself, shared by design (PEP 562 lazy names).
SHARED_PRIVATE = {"shipyard._lazy"}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("shipyard", exclude_type_checking_imports=False)


def _top(module: str) -> str:
    """``shipyard.serving._app`` -> ``shipyard.serving``; ``shipyard`` stays ``shipyard``."""
    return ".".join(module.split(".")[:2])


def _private_part(module: str) -> str | None:
    """The first private component below the top package, if any, as a dotted prefix."""
    parts = module.split(".")
    for i, part in enumerate(parts[1:], start=1):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[: i + 1])
    return None


def test_no_package_imports_another_packages_private_modules(graph: grimp.ImportGraph) -> None:
    bad = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            private = _private_part(imported)
            if private is None or private in SHARED_PRIVATE:
                continue
            owner = private.rsplit(".", 1)[0]  # the package the private module belongs to
            if _top(importer) != _top(owner):
                bad.append(f"{importer} -> {imported}")
    assert not bad, (
        "These imports reach into another package's private module; import the name from the "
        "package's public API (add it to its __init__ and __all__) instead:\n  " + "\n  ".join(bad)
    )


def test_the_prediction_log_is_its_own_package() -> None:
    assert (ROOT / "predlog" / "__init__.py").is_file()
    inside_serving = sorted(p.name for p in (ROOT / "serving").glob("*predlog*"))
    assert not inside_serving, f"move {inside_serving} to shipyard/predlog/"


def test_the_demo_is_not_a_bottom_level_module() -> None:
    stray = sorted(p.name for p in ROOT.glob("demo*.py"))
    assert not stray, f"{stray} sit beside errors.py and settings.py; the demo is the top layer"


def test_monitoring_never_imports_serving(graph: grimp.ImportGraph) -> None:
    chain = graph.find_shortest_chain(
        importer="shipyard.monitoring", imported="shipyard.serving", as_packages=True
    )
    assert chain is None, f"monitoring reaches serving through {' -> '.join(chain or ())}"
