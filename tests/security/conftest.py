"""Security fixtures: one store per session with ``churn`` v1 in production, its tokens, and the
model server with the web UI beside it on a real uvicorn (``serve_in_thread``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gates_off import NO_GATES
from shipyard import Client, Settings
from shipyard.auth import Tokens, Users
from shipyard.packaging import PreparedArchive
from shipyard.registry import Registry
from shipyard.store import Store


@dataclass(frozen=True)
class Served:
    """A store with ``churn`` v1 (production), an admin token acting for the user ``admin``
    and a scorer token; ``home`` holds the database, artifacts and prediction log."""

    store: Store
    home: Path
    admin_token: str
    scorer_token: str


def make_served(home: Path, archive: PreparedArchive) -> Served:
    home.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{home / 'shipyard.db'}", str(home / "artifacts"), creator="admin")
    store.open()
    registry = Registry(store, NO_GATES)
    registry.register(archive, name="churn", actor="alice")
    Users(store).set_role("bob", "approver", actor="admin")
    bob = Client(Settings(user="bob"), store=store, project=NO_GATES).open()
    bob.approve("churn", 1, reason="ok")
    registry.promote("churn", 1, actor="alice")
    tokens = Tokens(store)
    admin, _ = tokens.create(role="admin", name="ops", actor="admin", user="admin")
    scorer, _ = tokens.create(role="scorer", name="web", actor="admin")
    return Served(store, home, admin, scorer)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, prepared: PreparedArchive) -> Iterator[Served]:
    s = make_served(tmp_path_factory.mktemp("security") / "home", prepared)
    yield s
    s.store.close()
