"""The database asked for its own size, on SQLite and on PostgreSQL; the artifacts listed."""

from __future__ import annotations

from shipyard.store import Store, artifact_space, database_bytes


def test_database_and_artifact_sizes(store: Store) -> None:
    before = database_bytes(store)
    assert before is not None and before > 0
    assert artifact_space(store) == (0, 0)
    store.artifacts.put("models/a/1.zip", b"x" * 5000)
    store.artifacts.put("models/b/1.zip", b"y" * 300)
    assert artifact_space(store) == (2, 5300)
