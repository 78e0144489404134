"""The ``retrain_runs`` rows: one retraining of a model at a time, started, finished, listed.

``RetrainRuns.start`` refuses a second retraining of a model while one runs: inside one write
transaction that locks the model's row (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on
PostgreSQL), it looks for a ``running`` row of the model. A row whose owner (``host:pid``) is
a process of this host that no longer exists is stale (a crash, ``kill -9``): it is closed as
failed, saying so, and the new retraining starts. A row of a live owner (or of another host,
which cannot be checked from here) refuses the start with ``InvalidTransition``.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from shipyard.audit import append_event
from shipyard.errors import InvalidTransition, NotFound
from shipyard.store import Store, tables, to_entity
from shipyard.store.tables import RetrainRun, utcnow

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


@dataclass(frozen=True)
class RetrainRecord:
    """One retraining of a model as stored (``shipyard retrain history``).

    ``trigger`` is ``manual``, ``schedule:<job>`` or ``alert:<alert id>``; ``status``
    ``running``, ``succeeded`` (a candidate was registered and validated, whether or not it
    passed its gates: see ``passed``) or ``failed`` (``message`` says why); ``owner`` the
    ``host:pid`` that ran it; ``details`` the data source, the gates and the notifications.
    """

    id: int
    model_name: str
    trigger: str
    status: str
    started_at: datetime
    started_by: str
    owner: str = field(repr=False)
    finished_at: datetime | None = field(repr=False)
    run_id: str | None
    version: int | None
    passed: bool | None
    message: str = field(repr=False)
    details: dict[str, Any] = field(repr=False)


def this_process() -> str:
    """``host:pid`` of this process: the owner of the retrainings it starts."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_is_dead(owner: str) -> bool:
    """Whether ``owner`` names a process of this host that has exited (another host's
    process cannot be checked from here: it counts as alive)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


class RetrainRuns:
    """The ``retrain_runs`` rows of one store.

    >>> runs = RetrainRuns(store)  # doctest: +SKIP
    >>> record, stale = runs.start("churn", trigger="manual", actor="alice")  # doctest: +SKIP
    >>> runs.finish(record.id, status="succeeded", message="v4 registered")  # doctest: +SKIP
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def start(
        self, name: str, *, trigger: str, actor: str, owner: str | None = None
    ) -> tuple[RetrainRecord, list[RetrainRecord]]:
        """A new ``running`` row of ``name`` (audited ``retrain.started``), and the stale rows
        of dead owners it closed as failed; ``InvalidTransition`` when one is running."""
        owner = owner or this_process()
        now = utcnow()
        stale: list[RetrainRecord] = []
        with self.store.write() as session:
            locked = session.scalar(
                select(tables.Model).where(tables.Model.name == name).with_for_update()
            )
            if locked is None:
                raise NotFound(f"There is no model '{name}'. 'shipyard models list' shows them.")
            running = session.scalars(
                select(RetrainRun)
                .where(RetrainRun.model_name == name, RetrainRun.status == RUNNING)
                .order_by(RetrainRun.id)
            ).all()
            for row in running:
                if not _owner_is_dead(row.owner):
                    raise InvalidTransition(
                        f"A retraining of {name} is already running: #{row.id}, started by "
                        f"{row.started_by} at {row.started_at:%Y-%m-%d %H:%M:%S} UTC "
                        f"({row.trigger}, process {row.owner}); wait for it to finish."
                    )
                row.status, row.finished_at = FAILED, now
                row.message = f"abandoned: process {row.owner} is gone"
                stale.append(to_entity(RetrainRecord, row))
            row = RetrainRun(
                model_name=name,
                trigger=trigger,
                status=RUNNING,
                started_at=now,
                started_by=actor,
                owner=owner,
                finished_at=None,
                run_id=None,
                version=None,
                passed=None,
                message="",
                details={"closed_stale": [r.id for r in stale]} if stale else {},
            )
            session.add(row)
            session.flush()
            append_event(
                session,
                actor=actor,
                action="retrain.started",
                subject=f"model:{name}",
                details={"retrain": row.id, "trigger": trigger, "owner": owner},
            )
            return to_entity(RetrainRecord, row), stale

    def update(self, retrain_id: int, **values: Any) -> None:
        """Set columns of a running row (``run_id``, ``version``...); ``details`` are merged
        into the row's."""
        with self.store.write() as session:
            row = session.get(RetrainRun, retrain_id, with_for_update=True)
            if row is None or row.status != RUNNING:
                return
            if "details" in values:
                values["details"] = {**row.details, **values["details"]}
            for key, value in values.items():
                setattr(row, key, value)

    def finish(
        self,
        retrain_id: int,
        *,
        status: str,
        message: str,
        actor: str,
        details: dict[str, Any] | None = None,
    ) -> RetrainRecord:
        """Close a running row as ``succeeded`` or ``failed`` (audited ``retrain.finished``
        with the version and whether it passed, or ``retrain.failed`` with the message)."""
        with self.store.write() as session:
            row = session.get(RetrainRun, retrain_id, with_for_update=True)
            if row is None:
                raise NotFound(f"There is no retraining #{retrain_id}.")
            if row.status == RUNNING:
                row.status, row.message, row.finished_at = status, message, utcnow()
                if details:
                    row.details = {**row.details, **details}
                append_event(
                    session,
                    actor=actor,
                    action="retrain.finished" if status == SUCCEEDED else "retrain.failed",
                    subject=f"model:{row.model_name}"
                    + (f"/{row.version}" if row.version is not None else ""),
                    details={
                        "retrain": row.id,
                        "trigger": row.trigger,
                        "run_id": row.run_id,
                        "version": row.version,
                        "passed": row.passed,
                        **({"error": message} if status == FAILED else {}),
                    },
                )
            return to_entity(RetrainRecord, row)

    def get(self, retrain_id: int) -> RetrainRecord:
        """One retraining by id."""
        with self.store.read() as session:
            row = session.get(RetrainRun, retrain_id)
            if row is None:
                raise NotFound(f"There is no retraining #{retrain_id}.")
            return to_entity(RetrainRecord, row)

    def history(self, name: str | None = None, *, limit: int = 50) -> list[RetrainRecord]:
        """Retrainings, newest first (of model ``name`` only, if given)."""
        query = select(RetrainRun).order_by(RetrainRun.id.desc()).limit(limit)
        if name:
            query = query.where(RetrainRun.model_name == name)
        with self.store.read() as session:
            return [to_entity(RetrainRecord, r) for r in session.scalars(query)]
