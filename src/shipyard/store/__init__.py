"""Persistence: the metadata database (SQLAlchemy + Alembic) and the artifact store (fsspec)."""

from shipyard.store._artifacts import ArtifactStore, sha256
from shipyard.store._db import upgrade_schema
from shipyard.store._store import Store, open_store

__all__ = ["ArtifactStore", "Store", "open_store", "sha256", "upgrade_schema"]
