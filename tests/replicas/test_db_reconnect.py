"""A long-lived store outlives its database connections: after PostgreSQL cut them (a restart,
a failover, an idle timeout), the next call works, on new connections, without a restart.

``pg_terminate_backend`` does to the store's connections what a restart does, without
restarting the server every other test shares (``test_replicas_shared`` restarts it once).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import sqlalchemy as sa
from replicas_support import PG_URL

from shipyard.store import Store, database_unreachable


def _cut_connections(application_name: str) -> int:
    admin = sa.create_engine(PG_URL)
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name"
                    ),
                    {"name": application_name},
                ).all()
            )
    finally:
        admin.dispose()


def test_a_store_reconnects_after_its_connections_were_cut(
    pg_schema_url: str, tmp_path: Path
) -> None:
    name = f"shipyard-{uuid.uuid4().hex[:8]}"
    store = Store(
        f"{pg_schema_url}&application_name={name}", str(tmp_path / "artifacts"), creator="admin"
    ).open()
    try:
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
        assert _cut_connections(name) >= 1  # the pooled connection is dead now
        with store.engine.connect() as conn:  # checked, replaced, and it answers
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        store.close()


def test_an_unreachable_database_is_one_line() -> None:
    engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/test")
    try:
        with engine.connect():
            raise AssertionError("nothing listens on port 1")
    except sa.exc.OperationalError as exc:
        reason = database_unreachable(exc)
        assert reason is not None and "\n" not in reason and "127.0.0.1" in reason
        wrapped = RuntimeError("Checking the registry failed")
        wrapped.__cause__ = exc
        assert database_unreachable(wrapped) == reason
    finally:
        engine.dispose()
    assert database_unreachable(ValueError("a bug, not an outage")) is None
