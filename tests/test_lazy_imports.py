"""``import shipyard`` is cheap: the facade's names load on first use (PEP 562)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import shipyard

HEAVY = ("sklearn", "scipy", "sqlalchemy", "pandas", "pyarrow", "httpx", "plotly")


def _loaded_after(statement: str) -> list[str]:
    """The heavy packages in ``sys.modules`` after ``statement``, in a fresh interpreter."""
    code = f"import sys; {statement}; print(__import__('json').dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = set(json.loads(done.stdout))
    return [name for name in HEAVY if name in modules]


def test_import_shipyard_loads_no_heavy_library() -> None:
    assert _loaded_after("import shipyard") == []


def test_the_client_class_loads_no_heavy_library_until_opened() -> None:
    assert _loaded_after("from shipyard import Client, Settings") == []


def test_the_cli_loads_no_heavy_library_until_a_command_runs() -> None:
    # Typer + Rich + settings only: every command imports its libraries when it runs, so
    # `shipyard --help` and a mistyped command answer at once.
    assert _loaded_after("import shipyard.cli") == []


def test_monitoring_statistics_load_no_store_alerting_plotting_or_model() -> None:
    # A drift check over a file (shipyard.monitoring) needs numpy, pandas and scipy only; the
    # results store (SQLAlchemy) and the HTML report (plotly) load on first use.
    loaded = _loaded_after("import shipyard.monitoring")
    assert not {"sklearn", "sqlalchemy", "httpx", "plotly"} & set(loaded)


def test_a_cluster_worker_loads_a_model_without_the_database_side() -> None:
    # Every Python worker of a Spark executor imports this to load the model it scores with;
    # the store's database side (SQLAlchemy, Alembic) loads on first use of its names.
    assert "sqlalchemy" not in _loaded_after("import shipyard.batch._spark, shipyard.packaging")
    loaded = _loaded_after("from shipyard.store import Store")
    assert "sqlalchemy" in loaded


def test_the_store_package_resolves_every_public_name() -> None:
    import shipyard.store as store

    for name in store.__all__:
        assert getattr(store, name) is not None
    assert set(store.__all__) <= set(dir(store))


def test_every_public_name_resolves() -> None:
    for name in shipyard.__all__:
        assert getattr(shipyard, name) is not None
    assert set(shipyard.__all__) <= set(dir(shipyard))
    assert shipyard.Client.__module__ == "shipyard.client._client"
    assert shipyard.LoadedModel.__name__ == "LoadedModel"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Clinet'"):
        shipyard.Clinet  # noqa: B018 - the access is the test
