"""Job runs in the store (table ``job_runs``): start (or skip), finish, history.

One run at a time per job, across every scheduler sharing the store: ``start`` checks for a
``running`` row inside a write transaction (serialised by SQLite's ``BEGIN IMMEDIATE``; on
PostgreSQL by a transaction-level advisory lock on the job's name) and records a ``skipped``
row instead when one is found. A ``running`` row left by a scheduler process on this host that
no longer exists is closed as failed, so a crash does not block the job forever.
"""

from __future__ import annotations

import os
import socket
import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update

from shipyard.store import Store
from shipyard.store.tables import JobRun, utcnow

RUNNING, SUCCEEDED, FAILED, SKIPPED = "running", "succeeded", "failed", "skipped"


def this_owner() -> str:
    """``host:pid`` of this process, the ``owner`` of the runs it starts."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _gone(owner: str) -> bool:
    """Whether ``owner`` is a process of this host that no longer exists."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's scheduler: trust its row
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class JobRuns:
    """The ``job_runs`` rows of one store, written as ``owner``.

    >>> runs = JobRuns(store, owner=this_owner())  # doctest: +SKIP
    >>> run = runs.start("churn-drift", trigger="manual")  # doctest: +SKIP
    """

    def __init__(self, store: Store, *, owner: str) -> None:
        self.store = store
        self.owner = owner

    def start(self, job: str, *, trigger: str, now: datetime | None = None) -> JobRun:
        """A new ``running`` row, or a ``skipped`` one when the job is running already."""
        now = now or utcnow()
        with self.store.write() as session:
            if session.get_bind().dialect.name == "postgresql":
                key = zlib.crc32(f"shipyard.job:{job}".encode()) - 2**31
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            running = session.scalars(
                select(JobRun).where(JobRun.job == job, JobRun.status == RUNNING)
            ).all()
            active = None
            for row in running:
                if _gone(row.owner):
                    _close(row, FAILED, f"abandoned: scheduler process {row.owner} is gone", now)
                elif active is None:
                    active = row
            if active is not None:
                run = JobRun(
                    job=job,
                    trigger=trigger,
                    owner=self.owner,
                    started_at=now,
                    finished_at=now,
                    seconds=0.0,
                    status=SKIPPED,
                    message=f"run #{active.id} (started {active.started_at:%Y-%m-%d %H:%M:%S} "
                    f"by {active.owner}) is still running",
                    details={"running": active.id},
                )
            else:
                run = JobRun(
                    job=job,
                    trigger=trigger,
                    owner=self.owner,
                    started_at=now,
                    finished_at=None,
                    seconds=None,
                    status=RUNNING,
                    message="",
                    details={},
                )
            session.add(run)
        return run

    def finish(self, run: JobRun, *, status: str, message: str, details: dict[str, Any]) -> JobRun:
        """Close a running row (only if it is still running: an interrupted mark stays)."""
        now = utcnow()
        started = run.started_at
        seconds = (now - started).total_seconds()
        with self.store.write() as session:
            session.execute(
                update(JobRun)
                .where(JobRun.id == run.id, JobRun.status == RUNNING)
                .values(
                    status=status,
                    message=message,
                    details=details,
                    finished_at=now,
                    seconds=seconds,
                )
            )
            fresh = session.get(JobRun, run.id, populate_existing=True)
        return fresh if fresh is not None else run

    def close_abandoned(self, now: datetime | None = None) -> list[JobRun]:
        """Close as failed every ``running`` row whose scheduler process on this host is gone
        (a crash, ``kill -9``); a scheduler calls it when it starts."""
        now = now or utcnow()
        closed = []
        with self.store.write() as session:
            for row in session.scalars(select(JobRun).where(JobRun.status == RUNNING)).all():
                if _gone(row.owner):
                    _close(row, FAILED, f"abandoned: scheduler process {row.owner} is gone", now)
                    closed.append(row)
        return closed

    def interrupt(self, run: JobRun, message: str) -> None:
        """Mark a run that is still going when the scheduler stops."""
        self.finish(run, status=FAILED, message=message, details={"interrupted": True})

    def history(self, job: str | None = None, *, limit: int = 50) -> Sequence[JobRun]:
        """Runs, newest first."""
        query = select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)
        if job:
            query = query.where(JobRun.job == job)
        with self.store.read() as session:
            return session.scalars(query).all()

    def last(self) -> dict[str, JobRun]:
        """The newest run of each job that was not skipped."""
        with self.store.read() as session:
            newest = (
                select(func.max(JobRun.id)).where(JobRun.status != SKIPPED).group_by(JobRun.job)
            )
            rows = session.scalars(select(JobRun).where(JobRun.id.in_(newest))).all()
        return {row.job: row for row in rows}


def _close(row: JobRun, status: str, message: str, now: datetime) -> None:
    row.status, row.message, row.finished_at = status, message, now
    row.seconds = (now - row.started_at).total_seconds()
