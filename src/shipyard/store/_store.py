"""The ``Store``: one metadata database plus one artifact store."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from shipyard.config import StorageTable
from shipyard.errors import StoreUnavailable
from shipyard.settings import Settings
from shipyard.store import _db
from shipyard.store._artifacts import ArtifactStore
from shipyard.store._events import APPENDED_EVENTS, append_event
from shipyard.store.tables import AuditEvent, User, utcnow

_log = logging.getLogger(__name__)


class Store:
    """Metadata database + artifact store, passed explicitly to every component.

    The constructor only stores its arguments; ``open()`` connects, creates a new database at
    the current schema (its creator becomes the admin) or refuses an out-of-date one.

    >>> store = Store("sqlite://", "memory://doctest", creator="alice").open()
    >>> store.created_now
    True
    """

    def __init__(
        self,
        db_url: str,
        artifacts_url: str,
        *,
        creator: str,
        home: Path | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ):
        self.db_url = db_url
        self.artifacts_url = artifacts_url
        self.creator = creator
        self.home = home
        self.storage_options = dict(storage_options or {})
        self.listeners: list[Callable[[list[AuditEvent]], None]] = []

    @classmethod
    def from_settings(cls, settings: Settings, storage: StorageTable | None = None) -> Store:
        """A store configured by ``settings`` (not opened yet); the artifact store's options
        are ``storage`` (shipyard.toml's ``[storage]``) overridden by
        ``settings.storage_options`` (``SHIPYARD_STORAGE_OPTIONS``), key by key."""
        home = settings.home.expanduser().absolute()
        options = {**(storage.options if storage else {}), **settings.storage_options}
        return cls(
            settings.database_url,
            settings.artifacts_url,
            creator=settings.user,
            home=home,
            storage_options=options,
        )

    def open(self) -> Store:
        if self.home is not None:
            _ensure_writable(self.home)
        self.engine: Engine = _db.create_engine(self.db_url)
        try:
            self.artifacts = ArtifactStore(self.artifacts_url, self.storage_options).open()
            self.created_now = _db.ensure_schema(self.engine, on_create=self._record_creator)
        except BaseException:
            self.engine.dispose()
            raise
        return self

    def _record_creator(self, conn: Connection) -> None:
        with Session(bind=conn) as session:
            session.add(User(name=self.creator, role="admin", created_at=utcnow(), created_by=""))
            append_event(
                session,
                actor=self.creator,
                action="store.created",
                subject=f"user:{self.creator}",
                details={"role": "admin"},
            )
            session.flush()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def read(self) -> Session:
        """A session for reading (use as a context manager)."""
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on any exception.

        On SQLite it begins with ``BEGIN IMMEDIATE``, so concurrent writers queue up instead of
        reading stale rows; on PostgreSQL writers lock the rows they change (``FOR UPDATE``).
        """
        engine = self.engine.execution_options(immediate=True)
        with Session(engine, expire_on_commit=False) as session:
            with session.begin():
                yield session
            events = session.info.pop(APPENDED_EVENTS, [])
        # Only reached after a commit: a rolled-back change notifies no one.
        for listener in list(self.listeners) if events else ():
            try:
                listener(events)
            except Exception:  # the change is committed: a listener cannot undo or fail it
                _log.exception("A store listener failed after a commit")

    def add_listener(self, listener: Callable[[list[AuditEvent]], None]) -> None:
        """Call ``listener(events)`` after each committed write that appended audit events.

        Listeners run after the commit, never on rollback, and their exceptions are logged,
        not raised: the change they are told about is already durable.
        """
        self.listeners.append(listener)


def _ensure_writable(home: Path) -> None:
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StoreUnavailable(
            f"Cannot write to the Shipyard home folder '{home}' ({exc.strerror or exc}). "
            "Set SHIPYARD_HOME to a writable folder."
        ) from exc


def open_store(settings: Settings | None = None) -> Store:
    """Open the store that ``settings`` (default: the environment) describe."""
    return Store.from_settings(settings or Settings()).open()
