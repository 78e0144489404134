"""Jobs declared in ``shipyard.toml``: ``[[jobs]]`` tables and the ``[scheduler]`` table.

.. code-block:: toml

    [scheduler]
    channels = ["oncall"]     # where failed jobs are alerted ([channels.*] names)
    alert_cooldown = "1h"     # no repeat alert for the same job within this time

    [[jobs]]
    name = "churn-drift"
    kind = "monitor"          # monitor | gc | command
    schedule = "0 * * * *"    # cron; a sixth field counts seconds ("* * * * * */10")
    model = "churn@production"
    window = "1h"
    report = "reports/churn-{date}.html"

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
    if not croniter.is_valid(table.schedule):
        raise project.invalid(
            ("jobs", i, "schedule"),
            "must be a cron expression such as '0 * * * *' (minute hour day month weekday, "
            f"optional sixth field for seconds). Got {table.schedule!r} instead.",
        )
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
