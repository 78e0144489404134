"""Health fixtures: a SQLite store with ``churn`` v1 in production and tokens of two teams."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gates_off import NO_GATES
from shipyard import Client, Settings
from shipyard.auth import Tokens
from shipyard.packaging import PreparedArchive
from shipyard.registry import Registry
from shipyard.store import Store

GOOD = {"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}


@pytest.fixture
def served_store(tmp_path: Path, prepared: PreparedArchive) -> Iterator[Store]:
    """A SQLite store under ``tmp_path/home`` with ``churn`` v1 approved and in production."""
    home = tmp_path / "home"
    store = Store(
        f"sqlite:///{tmp_path / 'shipyard.db'}", str(home / "artifacts"), creator="admin"
    ).open()
    registry = Registry(store, NO_GATES)
    registry.register(prepared, name="churn", actor="alice")
    admin = Client(Settings(user="admin"), store=store, project=NO_GATES).open()
    admin.users.set_role("bob", "approver", actor="admin")
    Client(Settings(user="bob"), store=store, project=NO_GATES).open().approve(
        "churn", 1, reason="metrics ok"
    )
    registry.promote("churn", 1, actor="alice")
    yield store
    store.close()


@pytest.fixture
def team_tokens(served_store: Store) -> dict[str, str]:
    """Secrets of three scorer tokens: ``web`` (team risk), ``batch`` (growth), ``lab`` (none)."""
    tokens = Tokens(served_store)
    out = {}
    for name, team in (("web", "risk"), ("batch", "growth"), ("lab", None)):
        out[name] = tokens.create(role="scorer", name=name, actor="admin", team=team)[0]
    return out
