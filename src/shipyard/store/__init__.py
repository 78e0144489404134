"""Persistence: the metadata database (SQLAlchemy + Alembic) and the artifact store (fsspec).

``open_filesystem(url, storage_options)`` is how every package reaches a folder or an object
store (s3:// through s3fs), and ``store_errors`` turns a missing bucket, refused keys or an
unreachable endpoint into one ``StoreUnavailable`` sentence.

The bottom of Shipyard's packages: imports only ``shipyard.errors``, ``shipyard.settings`` and
``shipyard.config``; any package may import it. ``shipyard.store.tables`` is the public module
of ORM tables; the audit chain's write side (``append_event``) is here because the store writes
its first event.
"""

from typing import TYPE_CHECKING

from shipyard._lazy import lazy_attributes as _lazy_attributes
from shipyard.store._artifacts import ArtifactStore, sha256
from shipyard.store._entity import to_entity
from shipyard.store._fs import open_filesystem, store_errors

if TYPE_CHECKING:
    from shipyard.store._db import create_engine, database_unreachable, upgrade_schema
    from shipyard.store._events import GENESIS, HASHED_FIELDS, append_event, event_hash
    from shipyard.store._size import artifact_space, database_bytes
    from shipyard.store._store import Store, open_store

# Loaded on first use (PEP 562): the database side pulls in SQLAlchemy and Alembic, which an
# archive's checksums (``sha256``) and the artifact store do not need, nor does a Spark or Dask
# worker loading a model (each of its Python workers would spend ~0.5 s importing them).
_LAZY = {
    "create_engine": "shipyard.store._db",
    "database_unreachable": "shipyard.store._db",
    "upgrade_schema": "shipyard.store._db",
    "GENESIS": "shipyard.store._events",
    "HASHED_FIELDS": "shipyard.store._events",
    "append_event": "shipyard.store._events",
    "event_hash": "shipyard.store._events",
    "artifact_space": "shipyard.store._size",
    "database_bytes": "shipyard.store._size",
    "Store": "shipyard.store._store",
    "open_store": "shipyard.store._store",
}

__getattr__, __dir__ = _lazy_attributes("shipyard.store", _LAZY, globals())

__all__ = [
    "GENESIS",
    "HASHED_FIELDS",
    "ArtifactStore",
    "Store",
    "append_event",
    "artifact_space",
    "create_engine",
    "database_bytes",
    "database_unreachable",
    "event_hash",
    "open_filesystem",
    "open_store",
    "sha256",
    "store_errors",
    "to_entity",
    "upgrade_schema",
]
