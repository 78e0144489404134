"""The store: schema creation, refusal of old schemas, migrations, unreachable and read-only."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shipyard.errors import SchemaOutOfDate, StoreUnavailable
from shipyard.store import Store
from shipyard.store._db import alembic_config, create_engine, head_revision
from shipyard.store.tables import Base, User


def test_new_database_is_created_at_head_with_its_creator_as_admin(store: Store) -> None:
    assert store.created_now
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
    with store.read() as session:
        assert session.get(User, "admin").role == "admin"


def test_reopening_does_not_recreate(store: Store, tmp_path: Path) -> None:
    again = Store(store.db_url, str(tmp_path / "artifacts"), creator="someone-else").open()
    assert not again.created_now
    with again.read() as session:
        assert session.get(User, "someone-else") is None
    again.close()


def test_older_schema_is_refused_with_the_upgrade_command(store: Store, tmp_path: Path) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
    with pytest.raises(SchemaOutOfDate, match="shipyard db upgrade"):
        Store(store.db_url, str(tmp_path / "artifacts"), creator="admin").open()


def test_migrations_match_the_orm(store: Store) -> None:
    from alembic import command

    with store.engine.execution_options(immediate=True).begin() as conn:
        command.downgrade(alembic_config(conn), "base")  # a new store is made by create_all:
        command.upgrade(alembic_config(conn), "head")  # replay the migrations to compare them
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"ORM and migrations differ; write a migration for: {diff}"


def _schema(conn: sa.Connection) -> dict[str, dict[str, object]]:
    """Every table as the database itself describes it (reflected, not the ORM's view)."""
    inspector = sa.inspect(conn)
    described: dict[str, dict[str, object]] = {}
    for table in sorted(inspector.get_table_names()):
        columns = [
            (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
            for c in inspector.get_columns(table)
        ]
        described[table] = {
            "columns": sorted(columns),
            "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            ),
        }
    return described


def test_a_new_database_has_exactly_the_schema_the_migrations_build(store: Store) -> None:
    """A new store is made by ``create_all`` and stamped at head (fast); replaying every
    migration on the same database must give the very same tables, columns, types,
    nullability, server defaults, keys, indexes and unique constraints."""
    from alembic import command

    with store.engine.execution_options(immediate=True).begin() as conn:
        created = _schema(conn)
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        command.downgrade(alembic_config(conn), "base")
        command.upgrade(alembic_config(conn), "head")
        migrated = _schema(conn)
    assert set(created) == set(migrated) and len(created) > 20
    for table in created:
        assert created[table] == migrated[table], table


def test_every_downgrade_works(store: Store) -> None:
    from alembic import command

    with store.engine.execution_options(immediate=True).begin() as conn:
        command.downgrade(alembic_config(conn), "base")
        assert not sa.inspect(conn).has_table("runs")
        command.upgrade(alembic_config(conn), "head")
        assert sa.inspect(conn).has_table("runs")


def test_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=2"
    with pytest.raises(StoreUnavailable) as info:
        Store(url, str(tmp_path / "a"), creator="x").open()
    assert "Cannot reach the database" in info.value.message
    assert "secret" not in info.value.message  # the password is redacted


def test_malformed_database_url(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="SHIPYARD_DB_URL"):
        create_engine("not a url")


def test_home_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = Store.from_settings(__import__("shipyard").Settings(home=blocker / "home"))
    with pytest.raises(StoreUnavailable, match="Set SHIPYARD_HOME to a writable folder"):
        store.open()


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` unwritable, even for root (tests run as root here): chmod, and the
    immutable attribute where chattr works."""
    folder.chmod(0o555)
    immutable = (
        os.geteuid() == 0
        and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    )
    try:
        if os.geteuid() == 0 and not immutable:
            pytest.skip("cannot make a folder read-only for root here (no chattr)")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_read_only_home_is_one_clear_error_via_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "ro"
    home.mkdir()
    env = {**os.environ, "SHIPYARD_HOME": str(home), "SHIPYARD_USER": "x"}
    env.pop("SHIPYARD_DB_URL", None)
    env.pop("SHIPYARD_ARTIFACTS", None)
    with read_only(home):
        proc = subprocess.run(
            [sys.executable, "-m", "shipyard", "init"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 1, proc.stderr
    assert "Cannot write to the Shipyard home folder" in proc.stderr
    assert "SHIPYARD_HOME" in proc.stderr and "Traceback" not in proc.stderr
    assert list(home.iterdir()) == []
