"""Jobs declared in ``shipyard.toml``: ``[[jobs]]`` tables and the ``[scheduler]`` table.

.. code-block:: toml

    [scheduler]
    channels = ["oncall"]     # where failed jobs are alerted ([channels.*] names)
    alert_cooldown = "1h"     # no repeat alert for the same job within this time

    [[jobs]]
    name = "churn-drift"
    kind = "monitor"          # monitor | gc | retrain | command | digest
    schedule = "0 * * * *"    # cron; a sixth field counts seconds ("* * * * * */10")
    model = "churn@production"
    window = "1h"
    report = "reports/churn-{date}.html"

    [models.churn.retrain]
    entry = "train_churn:train"
    target = "churned"
    data = "data/*.parquet"
    schedule = "0 3 * * 1"    # also declares the job "retrain-churn" (kind retrain)

A ``schedule`` in ``[models.NAME.retrain]`` declares a job of kind ``retrain`` named
``retrain-NAME`` (its failures alerted like any job's), so the retraining's settings stay in
one table; a ``[[jobs]]`` table of that name too is refused.

The tables are read by ``shipyard.config.load_project``; ``SchedulerConfig.from_project`` checks
each job's kind and its parameters (``JOB_KINDS[kind].params``), refusing a bad one with
``InvalidInput`` naming the job and the key.
"""

from __future__ import annotations

from datetime import datetime

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.config import JobTable, ProjectConfig
from shipyard.scheduler._jobs import JOB_KINDS


class JobSpec(BaseModel):
    """One declared job: its name, kind, cron schedule, kind parameters and alert channels."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    kind: str
    schedule: str
    params: BaseModel
    channels: list[str] | None = None
    """Where this job's failures are alerted; ``None``: the ``[scheduler]`` channels."""

    def next_run(self, after: datetime) -> datetime:
        """The first scheduled time strictly after ``after`` (timezone-aware in, aware out)."""
        nxt: datetime = croniter(self.schedule, after).get_next(datetime)
        return nxt

    @property
    def model(self) -> str | None:
        """The model a job is about, when its kind takes one."""
        value = getattr(self.params, "model", None)
        return str(value) if value else None


class SchedulerConfig(BaseModel):
    """The ``[scheduler]`` table and the ``[[jobs]]`` of ``shipyard.toml``, each job's kind and
    parameters checked."""

    model_config = ConfigDict(extra="forbid")

    channels: list[str] = Field(default_factory=list)
    alert_cooldown: str = "1h"
    jobs: list[JobSpec] = Field(default_factory=list)

    @classmethod
    def from_project(cls, project: ProjectConfig) -> SchedulerConfig:
        """The scheduler's part of ``project``; a bad job is refused naming it and the key."""
        jobs = [_job(project, i, table) for i, table in enumerate(project.jobs)]
        jobs.extend(_retrain_jobs(project, {job.name for job in jobs}))
        section = project.scheduler
        return cls(channels=section.channels, alert_cooldown=section.alert_cooldown, jobs=jobs)

    def job(self, name: str) -> JobSpec:
        from shipyard.errors import NotFound

        for job in self.jobs:
            if job.name == name:
                return job
        names = ", ".join(j.name for j in self.jobs) or "none"
        raise NotFound(f"There is no job '{name}' in shipyard.toml (declared: {names}).")


def _job(project: ProjectConfig, i: int, table: JobTable) -> JobSpec:
    if table.kind not in JOB_KINDS:
        raise project.invalid(
            ("jobs", i, "kind"),
            f"must be one of {', '.join(sorted(JOB_KINDS))}. Got {table.kind!r} instead.",
        )
    _check_cron(project, ("jobs", i, "schedule"), table.schedule)
    params = JOB_KINDS[table.kind].params
    try:
        values = params.model_validate(table.params)
    except ValidationError as exc:
        raise project.invalid_table(exc, ("jobs", i), params, also=JobTable.model_fields) from None
    return JobSpec(
        name=table.name,
        kind=table.kind,
        schedule=table.schedule,
        params=values,
        channels=table.channels,
    )


def _check_cron(project: ProjectConfig, where: tuple[str | int, ...], schedule: str) -> None:
    if not croniter.is_valid(schedule):
        raise project.invalid(
            where,
            "must be a cron expression such as '0 * * * *' (minute hour day month weekday, "
            f"optional sixth field for seconds). Got {schedule!r} instead.",
        )


def _retrain_jobs(project: ProjectConfig, taken: set[str]) -> list[JobSpec]:
    """The ``retrain-NAME`` jobs that ``schedule`` in ``[models.NAME.retrain]`` declares."""
    jobs = []
    for name, model in project.models.items():
        if model.retrain is None or model.retrain.schedule is None:
            continue
        where = ("models", name, "retrain", "schedule")
        _check_cron(project, where, model.retrain.schedule)
        job = f"retrain-{name}"
        if job in taken:
            raise project.invalid(
                where,
                f"declares the job '{job}', which a [[jobs]] table declares too; remove one.",
            )
        jobs.append(
            JobSpec(
                name=job,
                kind="retrain",
                schedule=model.retrain.schedule,
                params=JOB_KINDS["retrain"].params.model_validate({"model": name}),
            )
        )
    return jobs
