"""Replica fixtures: ``shared_registry`` is a fresh PostgreSQL schema for the module with
``churn`` v1 (production) and v2, both approved, and the folders replicas share
(``replicas_support.SharedRegistry``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from replicas_support import PG_URL, SharedRegistry

from gates_off import NO_GATES
from shipyard import Client, Settings
from shipyard.packaging import PreparedArchive, prepare_archive
from shipyard.registry import Registry


@pytest.fixture(scope="session")
def prepared(fitted_pipeline, training_data) -> PreparedArchive:  # type: ignore[no-untyped-def]
    """The archive of ``fitted_pipeline`` with its ONNX export, prepared once per session."""
    X, y, Xe, ye = training_data
    return prepare_archive(fitted_pipeline, X_train=X, y_train=y, X_eval=Xe, y_eval=ye)


def _require_pg() -> None:
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any driver or connection failure
        message = f"PostgreSQL at {PG_URL} is not reachable: {str(exc).splitlines()[0]}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: PostgreSQL is required)")
        pytest.skip(message)


@pytest.fixture(scope="module")
def pg_module_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema for this module (dropped afterwards)."""
    _require_pg()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        admin.dispose()  # its connection may have died in a restart of PostgreSQL
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def shared_registry(
    pg_module_url: str, prepared: PreparedArchive, tmp_path_factory: pytest.TempPathFactory
) -> SharedRegistry:
    """``churn`` v1 (production) and v2 by alice, approved by bob, on PostgreSQL."""
    root = tmp_path_factory.mktemp("replicas")
    shared = SharedRegistry(pg_module_url, root / "artifacts", root / "predlog", root / "home")
    shared.home.mkdir()
    store = shared.open_store()
    try:
        admin = Client(Settings(user="admin"), store=store, project=NO_GATES).open()
        admin.users.set_role("bob", "approver", actor="admin")
        bob = Client(Settings(user="bob"), store=store, project=NO_GATES).open()
        registry = Registry(store, NO_GATES)
        for version in (1, 2):
            registry.register(prepared, name="churn", actor="alice")
            bob.approve("churn", version, reason="metrics ok")
        registry.promote("churn", 1, actor="alice")
    finally:
        store.close()
    return shared
