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

Each kind declares its parameters (``JOB_KINDS[kind].params``); a bad table raises
``InvalidInput`` naming the job and the field.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.alerting import AlertRule, check_channel_names
from shipyard.errors import InvalidInput
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
    """The ``[scheduler]`` table and the ``[[jobs]]`` of ``shipyard.toml``."""

    model_config = ConfigDict(extra="forbid")

    channels: list[str] = Field(default_factory=list)
    alert_cooldown: str = "1h"
    jobs: list[JobSpec] = Field(default_factory=list)

    def job(self, name: str) -> JobSpec:
        from shipyard.errors import NotFound

        for job in self.jobs:
            if job.name == name:
                return job
        names = ", ".join(j.name for j in self.jobs) or "none"
        raise NotFound(f"There is no job '{name}' in shipyard.toml (declared: {names}).")


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"field '{'.'.join(map(str, e['loc'])) or '?'}': "
        f"{e['msg'].removeprefix('Value error, ').rstrip('.')}"
        for e in exc.errors()
    )


def _job(i: int, table: Any, path: Path, channels: Mapping[str, Any]) -> JobSpec:
    where = f"[[jobs]] #{i + 1} in '{path}'"
    if not isinstance(table, Mapping):
        raise InvalidInput(f"{where} must be a table: write [[jobs]] with name, kind, schedule.")
    table = dict(table)
    name = table.pop("name", None)
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise InvalidInput(
            f"{where}: field 'name' must be a non-empty string of at most 100 characters. "
            f"Got {name!r} instead."
        )
    where = f"Job '{name}' in '{path}'"
    kind = table.pop("kind", None)
    if kind not in JOB_KINDS:
        raise InvalidInput(
            f"{where}: field 'kind' must be one of {', '.join(sorted(JOB_KINDS))}. "
            f"Got {kind!r} instead."
        )
    schedule = table.pop("schedule", None)
    if not isinstance(schedule, str) or not croniter.is_valid(schedule):
        raise InvalidInput(
            f"{where}: field 'schedule' must be a cron expression such as '0 * * * *' "
            f"(minute hour day month weekday, optional sixth field for seconds). "
            f"Got {schedule!r} instead."
        )
    job_channels = table.pop("channels", None)
    if job_channels is not None:
        if not isinstance(job_channels, list) or not all(isinstance(c, str) for c in job_channels):
            raise InvalidInput(
                f"{where}: field 'channels' must be a list of channel names. "
                f"Got {job_channels!r} instead."
            )
        check_channel_names(job_channels, channels, f"{where}: field 'channels'")
    try:
        params = JOB_KINDS[kind].params.model_validate(table)
    except ValidationError as exc:
        raise InvalidInput(f"{where} ({kind}): {_problems(exc)}.") from exc
    return JobSpec(name=name, kind=kind, schedule=schedule, params=params, channels=job_channels)


def load_scheduler_config(path: Path, channels: Mapping[str, Any]) -> SchedulerConfig:
    """Read ``[scheduler]`` and ``[[jobs]]``; ``channels`` are the declared alert channels."""
    if not path.is_file():
        return SchedulerConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"'{path}' is not valid TOML: {exc}.") from exc
    tables = data.get("jobs") or []
    if not isinstance(tables, list):
        raise InvalidInput(f"'jobs' in '{path}' must be an array of tables: write [[jobs]].")
    jobs: list[JobSpec] = []
    for i, table in enumerate(tables):
        job = _job(i, table, path, channels)
        if any(j.name == job.name for j in jobs):
            raise InvalidInput(
                f"Job '{job.name}' is declared twice in '{path}' (field 'name' must be unique); "
                f"rename one."
            )
        jobs.append(job)
    section = data.get("scheduler") or {}
    if not isinstance(section, Mapping):
        raise InvalidInput(f"'scheduler' in '{path}' must be a table: write [scheduler].")
    try:
        config = SchedulerConfig.model_validate({**section, "jobs": jobs})
    except ValidationError as exc:
        raise InvalidInput(f"[scheduler] in '{path}': {_problems(exc)}.") from exc
    check_channel_names(config.channels, channels, f"[scheduler] in '{path}': field 'channels'")
    rule = AlertRule(name="scheduler", metric="job.failed", cooldown=config.alert_cooldown)
    try:
        rule.cooldown_delta  # noqa: B018 - validate now, not at the first failure
    except InvalidInput as exc:
        raise InvalidInput(
            f"[scheduler] in '{path}': field 'alert_cooldown' must be a number and m, h, d or "
            f"w (e.g. '1h'). Got {config.alert_cooldown!r} instead."
        ) from exc
    return config
