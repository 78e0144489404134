"""Rows that retention (``gc``) deletes or keeps by age: monitoring results and job runs."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from shipyard.store import Store
from shipyard.store.tables import JobRun, MonitoringResult


def add_monitoring_row(store: Store, end: datetime, tag: str) -> None:
    """One PSI result of churn v1 whose window ended (and which was stored) at ``end``."""
    with store.write() as session:
        session.add(
            MonitoringResult(
                run_id=tag,
                model_name="churn",
                version=1,
                source=tag,
                window_start=None,
                window_end=end,
                metric="psi",
                feature="age",
                value=0.1,
                threshold=0.2,
                flagged=False,
                rows=10,
                seconds=0.1,
                created_at=end,
            )
        )


def add_job_run(store: Store, start: datetime, status: str, job: str) -> None:
    """One scheduled run of ``job`` started at ``start`` (still going if ``status`` is running)."""
    with store.write() as session:
        session.add(
            JobRun(
                job=job,
                trigger="schedule",
                owner="host:1",
                started_at=start,
                finished_at=None if status == "running" else start + timedelta(seconds=3),
                seconds=None if status == "running" else 3.0,
                status=status,
                message="",
                details={},
            )
        )


def rows_left(store: Store) -> tuple[list[str], list[str]]:
    """The sources of the monitoring results and the jobs of the job runs still stored."""
    with store.read() as session:
        sources = sorted(session.scalars(select(MonitoringResult.source)))
        jobs = sorted(session.scalars(select(JobRun.job)))
    return sources, jobs
