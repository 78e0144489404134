"""Persistence: the metadata database (SQLAlchemy + Alembic) and the artifact store (fsspec).

``open_filesystem(url, storage_options)`` is how every package reaches a folder or an object
store (s3:// through s3fs), and ``store_errors`` turns a missing bucket, refused keys or an
unreachable endpoint into one ``StoreUnavailable`` sentence.

The bottom of Shipyard's packages: imports only ``shipyard.errors``, ``shipyard.settings`` and
``shipyard.config``; any package may import it. ``shipyard.store.tables`` is the public module
of ORM tables; the audit chain's write side (``append_event``) is here because the store writes
its first event.
"""

from shipyard.store._artifacts import ArtifactStore, sha256
from shipyard.store._db import create_engine, upgrade_schema
from shipyard.store._entity import to_entity
from shipyard.store._events import GENESIS, HASHED_FIELDS, append_event, event_hash
from shipyard.store._fs import open_filesystem, store_errors
from shipyard.store._store import Store, open_store

__all__ = [
    "GENESIS",
    "HASHED_FIELDS",
    "ArtifactStore",
    "Store",
    "append_event",
    "create_engine",
    "event_hash",
    "open_filesystem",
    "open_store",
    "sha256",
    "store_errors",
    "to_entity",
    "upgrade_schema",
]
