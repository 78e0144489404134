"""Engine creation and schema management (Alembic) for the metadata database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from shipyard.errors import SchemaOutOfDate, StoreUnavailable
from shipyard.store.tables import Base

MIGRATIONS = Path(__file__).parent / "migrations"
# Serialises schema changes of one PostgreSQL database: first use (``ensure_schema``) and
# ``shipyard db upgrade`` (``upgrade_schema``) take it, so two servers starting at once, or two
# upgrades run by two deploy jobs, migrate once; the second waits, then finds the schema
# current. Any constant works; it is per database, released when the transaction ends.
_PG_INIT_LOCK = 0x5A1F_7A2D
#: Seconds to wait for a PostgreSQL server to accept a new connection before giving up.
_PG_CONNECT_TIMEOUT = 10


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config bound to Shipyard's migrations (and to ``connection`` if given)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def create_engine(url: str) -> Engine:
    """An engine with Shipyard's connection settings.

    SQLite gets WAL (readers never block the writer), foreign keys, a busy timeout, and
    ``BEGIN IMMEDIATE`` for write transactions (``execution_options(immediate=True)``) so that
    two processes cannot both read-then-write the same rows: the second waits for the first.
    """
    try:
        if url.startswith("sqlite"):
            engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            _configure_sqlite(engine)
            return engine
        return sa.create_engine(
            url,
            # Replicas outlive database restarts and failovers: every connection taken from
            # the pool is checked first (one round trip), so a connection the restart cut is
            # replaced instead of failing the caller's query, and a new connection to a
            # server that does not answer gives up after _PG_CONNECT_TIMEOUT seconds (the
            # registry watcher retries at its next poll) instead of the kernel's minutes.
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=5,
            connect_args=_connect_args(url),
        )
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise StoreUnavailable(
            f"Cannot use database URL '{_redact(url)}': {exc}. Check SHIPYARD_DB_URL "
            "(e.g. sqlite:///path/shipyard.db or postgresql+psycopg://user@host/db; "
            "PostgreSQL needs pip install 'shipyard[postgres]')."
        ) from exc


def _connect_args(url: str) -> dict[str, Any]:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "postgresql" or "connect_timeout" in parsed.query:
        return {}  # a connect_timeout in the URL wins
    return {"connect_timeout": _PG_CONNECT_TIMEOUT}


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours to emit.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def database_unreachable(exc: BaseException) -> str | None:
    """One line saying why the database cannot be reached, if that is what ``exc`` is.

    For a connection refused, cut by a restart or failover, or timed out (``StoreUnavailable``
    or the driver's ``OperationalError``, as raised or as the cause of another error);
    ``None`` for any other error. Long-running servers use it to log an outage as one line,
    not a traceback per retry.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, StoreUnavailable):
            return seen.message
        if isinstance(seen, sa.exc.OperationalError | sa.exc.InterfaceError) or (
            isinstance(seen, sa.exc.DBAPIError) and seen.connection_invalidated
        ):
            orig = seen.orig if seen.orig is not None else seen
            lines = str(orig).strip().splitlines()
            return lines[0] if lines else type(orig).__name__
        seen = seen.__cause__ or seen.__context__
    return None


def _redact(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"


def ensure_schema(engine: Engine, *, on_create: Any = None) -> bool:
    """Create a new database at the current schema, or refuse an older one.

    A new database gets the current tables at once (``create_all``) and is stamped at the
    head revision, as Alembic's cookbook builds one from scratch: on SQLite 4-5x faster than
    replaying every migration (the test suite and ``shipyard init`` open many). That both
    ways give the same schema is a test (``tests/store/test_store.py``); existing databases
    are still only ever changed by the migrations.

    Returns True when the database was created now; ``on_create(connection)`` then runs in
    the same transaction (it records the store's admin). Raises ``SchemaOutOfDate`` when the
    database is at an older revision and ``StoreUnavailable`` when it cannot be reached.
    """
    url = _redact(str(engine.url))
    try:
        with engine.execution_options(immediate=True).begin() as conn:
            _lock_schema(conn)
            current = MigrationContext.configure(conn).get_current_revision()
            head = head_revision()
            if current == head:
                return False
            if current is None:
                if sa.inspect(conn).has_table("runs"):
                    raise SchemaOutOfDate(
                        f"The database at {url} has Shipyard tables but no schema revision; "
                        "it was not created by this version of Shipyard."
                    )
                Base.metadata.create_all(conn)
                command.stamp(alembic_config(conn), "head")
                if on_create is not None:
                    on_create(conn)
                return True
            raise SchemaOutOfDate(
                f"The database at {url} is at schema revision {current} but this Shipyard "
                f"needs {head}. Back it up, then run 'shipyard db upgrade'."
            )
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StoreUnavailable(
            f"Cannot reach the database at {url}: {reason}. Check SHIPYARD_DB_URL and that "
            "the server is running."
        ) from exc


def upgrade_schema(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the database to the current schema; returns (from, to) revisions.

    Safe to run twice at once: on PostgreSQL the second waits for the first's advisory lock
    (on SQLite for its write lock), then reads the revision the first left and migrates
    nothing, returning ``(head, head)``.
    """
    with engine.execution_options(immediate=True).begin() as conn:
        _lock_schema(conn)
        current = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(alembic_config(conn), "head")
    return current, head_revision()


def _lock_schema(conn: Connection) -> None:
    """Wait for, then hold until ``conn``'s transaction ends, the schema-change lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_INIT_LOCK})
