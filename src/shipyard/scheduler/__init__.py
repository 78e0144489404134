"""Scheduling: jobs declared in ``shipyard.toml`` run on cron schedules (``shipyard scheduler``).

``load_scheduler_config`` reads ``[scheduler]`` and ``[[jobs]]``; ``Scheduler`` runs them, one
run at a time per job, recording every run in the ``job_runs`` table (``JobRuns``) and alerting
failures through the declared channels. Job kinds live in ``JOB_KINDS``.

>>> sorted(JOB_KINDS)
['command', 'gc', 'monitor']
"""

from shipyard.scheduler._config import JobSpec, SchedulerConfig, load_scheduler_config
from shipyard.scheduler._jobs import (
    JOB_KINDS,
    CommandParams,
    GcParams,
    JobContext,
    JobFailed,
    JobKind,
    JobResult,
    MonitorParams,
    run_command,
    run_gc,
    run_monitor,
)
from shipyard.scheduler._runs import JobRuns, this_owner
from shipyard.scheduler._scheduler import Scheduler, failure_message

__all__ = [
    "JOB_KINDS",
    "CommandParams",
    "GcParams",
    "JobContext",
    "JobFailed",
    "JobKind",
    "JobResult",
    "JobRuns",
    "JobSpec",
    "MonitorParams",
    "Scheduler",
    "SchedulerConfig",
    "failure_message",
    "load_scheduler_config",
    "run_command",
    "run_gc",
    "run_monitor",
    "this_owner",
]
