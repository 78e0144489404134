"""How much space the store takes: the metadata database and the artifacts.

``database_bytes`` asks the database itself (PostgreSQL's ``pg_database_size``; SQLite's
page count times page size, the file with its free pages); ``artifact_space`` lists the
artifact store (a local folder or any fsspec URL) once. ``shipyard status`` and the server's
``/metrics`` read them.

>>> database_bytes(store), artifact_space(store)  # doctest: +SKIP
(1638400, (12, 48211230))
"""

from __future__ import annotations

from sqlalchemy import text

from shipyard.store._store import Store


def database_bytes(store: Store) -> int | None:
    """The database's size in bytes, or ``None`` where the database cannot say."""
    dialect = store.engine.dialect.name
    with store.engine.connect() as conn:
        if dialect == "postgresql":
            value = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
        elif dialect == "sqlite":
            pages = conn.execute(text("PRAGMA page_count")).scalar()
            size = conn.execute(text("PRAGMA page_size")).scalar()
            value = None if pages is None or size is None else int(pages) * int(size)
        else:
            value = None
    return None if value is None else int(value)


def artifact_space(store: Store) -> tuple[int, int]:
    """(files, bytes) of everything in the artifact store."""
    artifacts = store.artifacts
    # Same package: the artifact store's own filesystem and root, as it opened them.
    fs, root = artifacts._fs, artifacts._root
    files = size = 0
    for info in fs.find(root, detail=True).values():
        if info.get("type", "file") == "file":
            files += 1
            size += int(info.get("size") or 0)
    return files, size
