"""Replica fixtures: ``shared_registry`` is a fresh PostgreSQL schema for the module with
``churn`` v1 (production) and v2, both approved, and the folders replicas share
(``replicas_support.SharedRegistry``).
"""

from __future__ import annotations

import pytest
from replicas_support import SharedRegistry

from gates_off import NO_GATES
from shipyard import Client, Settings
from shipyard.packaging import PreparedArchive
from shipyard.registry import Registry


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
