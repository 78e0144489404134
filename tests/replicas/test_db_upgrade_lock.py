"""Two ``shipyard db upgrade`` at once on PostgreSQL: one migrates, the other waits for it
(the schema advisory lock) and then finds the schema current."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from replicas_support import PG_URL

from shipyard.store import Store
from shipyard.store._db import _PG_INIT_LOCK, alembic_config

pytestmark = pytest.mark.slow


def _lock_waiters(admin: sa.Engine) -> int:
    with admin.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND ((classid::bigint << 32) | objid::bigint) = :k"
                ),
                {"k": _PG_INIT_LOCK},
            ).scalar_one()
        )


def test_two_upgrades_at_once_migrate_once(pg_schema_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(pg_schema_url)
    with engine.begin() as conn:  # a database two releases old
        command.upgrade(alembic_config(conn), "0006")
    engine.dispose()
    env = {"SHIPYARD_DB_URL": pg_schema_url, "SHIPYARD_HOME": str(tmp_path)}
    admin = sa.create_engine(PG_URL)
    holder = admin.connect()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        # Hold the lock, so both upgrades reach it before either migrates.
        holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_INIT_LOCK})
        for _ in range(2):
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "shipyard", "db", "upgrade"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env={**_base_env(), **env},
                )
            )
        deadline = time.monotonic() + 60
        while _lock_waiters(admin) < 2:
            for p in processes:
                assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "the upgrades did not wait for the schema lock"
            time.sleep(0.05)
    finally:
        holder.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_INIT_LOCK})
        holder.close()
        admin.dispose()
    outputs = []
    for p in processes:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        outputs.append(out.decode())
    assert sum("Upgraded the schema from 0006" in o for o in outputs) == 1, outputs
    assert sum("The schema is already current" in o for o in outputs) == 1, outputs
    # At head now: a store opens it.
    Store(pg_schema_url, str(tmp_path / "artifacts"), creator="admin").open().close()


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
