"""What happened around a model's monitoring: the scheduled jobs about it and their runs,
and the changes of its production version (the marks on the monitoring plots)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.config import ProjectConfig
from shipyard.errors import InvalidInput
from shipyard.registry import PRODUCTION, parse_ref
from shipyard.store.tables import AliasChange, JobRun

#: Job runs read at most.
JOBS_LIMIT = 500


class JobRunItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    job: str
    trigger: str
    started_at: datetime
    seconds: float | None
    status: str
    message: str


class AliasMark(BaseModel):
    """A production change (what answered before and after ``at``)."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    action: str
    version: int | None
    previous_version: int | None
    by: str
    reason: str


def job_names(project: ProjectConfig, name: str) -> list[str]:
    """The scheduled jobs about ``name``: its ``monitor``/``retrain`` ``[[jobs]]`` and the
    ``retrain-NAME`` job of ``[models.NAME.retrain]``."""
    names = []
    for job in project.jobs:
        model = job.params.get("model")
        if not isinstance(model, str):
            continue
        try:
            if parse_ref(model).name == name:
                names.append(job.name)
        except InvalidInput:
            continue
    table = project.models.get(name)
    if table is not None and table.retrain is not None and table.retrain.schedule:
        names.append(f"retrain-{name}")
    return names


def job_runs(session: Session, names: Iterable[str], since: datetime) -> list[JobRunItem]:
    names = list(names)
    if not names:
        return []
    rows = session.scalars(
        select(JobRun)
        .where(JobRun.job.in_(names), JobRun.started_at >= since)
        .order_by(JobRun.started_at.desc())
        .limit(JOBS_LIMIT)
    )
    return [JobRunItem.model_validate(r, from_attributes=True) for r in rows]


def production_changes(
    session: Session, name: str, since: datetime, until: datetime
) -> tuple[int | None, list[AliasMark]]:
    """The production version at ``since`` and the production changes up to ``until``."""
    at_start: int | None = None
    marks = []
    for change in session.scalars(
        select(AliasChange)
        .where(AliasChange.model_name == name, AliasChange.alias == PRODUCTION)
        .order_by(AliasChange.id)
    ):
        version = None if change.action == "remove" else change.version
        if change.at < since:
            at_start = version
        elif change.at <= until:
            marks.append(
                AliasMark(
                    at=change.at,
                    action=change.action,
                    version=version,
                    previous_version=change.previous_version,
                    by=change.by,
                    reason=change.reason,
                )
            )
    return at_start, marks
