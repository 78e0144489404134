"""Persistence: the metadata database (SQLAlchemy + Alembic) and the artifact store (fsspec).

The bottom of Shipyard's packages: imports only ``shipyard.errors`` and ``shipyard.settings``;
any package may import it. ``shipyard.store.tables`` is the public module of ORM tables; the
audit chain's write side (``append_event``) is here because the store writes its first event.
"""

from shipyard.store._artifacts import ArtifactStore, sha256
from shipyard.store._db import create_engine, database_unreachable, upgrade_schema
from shipyard.store._entity import to_entity
from shipyard.store._events import GENESIS, HASHED_FIELDS, append_event, event_hash
from shipyard.store._store import Store, open_store

__all__ = [
    "GENESIS",
    "HASHED_FIELDS",
    "ArtifactStore",
    "Store",
    "append_event",
    "create_engine",
    "database_unreachable",
    "event_hash",
    "open_store",
    "sha256",
    "to_entity",
    "upgrade_schema",
]
