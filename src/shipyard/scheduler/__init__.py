"""Scheduling: jobs declared in ``shipyard.toml`` run on cron schedules (``shipyard scheduler``).

``SchedulerConfig.from_project(project)`` takes ``[scheduler]`` and ``[[jobs]]`` from the parsed
project file (``shipyard.config``), checking each job's kind and parameters; ``Scheduler``
runs them, one run at a time per job, recording every run in the ``job_runs`` table
(``JobRuns``) and alerting failures through the declared channels. Job kinds live in ``JOB_KINDS``.

>>> sorted(JOB_KINDS)
['command', 'digest', 'gc', 'monitor', 'retrain', 'snapshot']
"""

from shipyard.scheduler._config import JobSpec, SchedulerConfig
from shipyard.scheduler._jobs import (
    JOB_KINDS,
    CommandParams,
    DigestParams,
    GcParams,
    JobContext,
    JobFailed,
    JobKind,
    JobResult,
    MonitorParams,
    RetrainParams,
    run_command,
    run_digest,
    run_gc,
    run_monitor,
    run_retrain,
)
from shipyard.scheduler._runs import JobRuns, this_owner
from shipyard.scheduler._scheduler import Scheduler, failure_message

__all__ = [
    "JOB_KINDS",
    "CommandParams",
    "DigestParams",
    "GcParams",
    "JobContext",
    "JobFailed",
    "JobKind",
    "JobResult",
    "JobRuns",
    "JobSpec",
    "MonitorParams",
    "RetrainParams",
    "Scheduler",
    "SchedulerConfig",
    "failure_message",
    "run_command",
    "run_digest",
    "run_gc",
    "run_monitor",
    "run_retrain",
    "this_owner",
]
