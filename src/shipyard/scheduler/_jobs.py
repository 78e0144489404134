"""The kinds of scheduled job: what each one runs, and the parameters it takes.

Every kind is a ``JobKind`` registered in ``JOB_KINDS``: a pydantic model of its parameters
(the keys of its ``[[jobs]]`` table besides name, kind, schedule and channels) and a function
``run(context, params) -> JobResult``. A job signals failure by raising; the scheduler records
the message and alerts.

- ``monitor``: drift and data quality of a model's logged window against its reference
  profile, stored as monitoring results, with the ``[[alerts]]`` rules evaluated on them
  (``shipyard.checks.monitor_window``, as ``shipyard monitor run``).
- ``gc``: retention (``shipyard gc``), with ``[retention]`` as defaults.
- ``retrain``: ``shipyard retrain MODEL`` (``shipyard.checks.retrain``): a candidate trained
  by ``[models.MODEL.retrain]``'s entry point, registered, validated against production, the
  approvers notified. A ``schedule`` in that table declares such a job by itself, named
  ``retrain-<MODEL>`` (``SchedulerConfig.from_project``).
- ``command``: any program, failed on a non-zero exit code.
- ``snapshot``: an online learner (river) at an alias taught the labels logged since it was
  registered, registered as a new version (``shipyard.checks.snapshot_from_log``).
- ``digest``: an e-mailed HTML digest of some models (``models`` or ``team``) to subscribers
  (``to`` addresses, ``users``) through an email channel's SMTP server
  (``shipyard.checks.send_digest``; its keys are ``DigestParams``).

A ``monitor`` job whose alerts ask for a retraining (``action = "retrain"``, ``on_drift``)
starts it once the monitoring run is stored (``shipyard.checks.retrain_on_alerts``).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shipyard.config import ProjectConfig, parse_age, parse_window
from shipyard.errors import InvalidInput
from shipyard.scheduler._digest_params import DigestParams


class JobFailed(Exception):
    """A job ended unsuccessfully for a reason its message states fully (no traceback needed)."""


@dataclass(frozen=True)
class JobContext:
    """What a job may use: the store, who acts, the parsed project file, the prediction log,
    the time of the tick it runs for."""

    store: Any
    actor: str
    project: ProjectConfig
    log_root: Path
    now: datetime
    abort: threading.Event = field(default_factory=threading.Event)
    """Set when the scheduler stops and its grace time is over: a job should end now."""
    job: str = ""
    """The name of the job running (a retraining's trigger is ``schedule:<job>``)."""


@dataclass
class JobResult:
    """What a successful run reports: rows processed, one line for people, JSON details."""

    rows: int = 0
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobKind:
    """One kind of job: its parameters and what it runs."""

    name: str
    params: type[BaseModel]
    run: Callable[[JobContext, Any], JobResult]
    doc: str


def _check_window(value: str | None) -> str | None:
    if value is not None:
        try:
            parse_window(value, option="window")
        except InvalidInput as exc:  # a ValueError lets pydantic name the job and field
            raise ValueError(exc.message) from None
    return value


# --- monitor ------------------------------------------------------------------------------


class MonitorParams(BaseModel):
    """``model`` (required), ``window`` (default 1d), ``outputs``, ``report``, ``log_dir``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    window: str = "1d"
    outputs: bool = False
    report: str | None = None
    """HTML report path; ``{model}``, ``{version}`` and ``{date}`` are filled in."""
    log_dir: str | None = None
    label_delay: str | None = None
    """Predictions younger than this are not expected to be labelled (default: ``label_delay``
    of ``[monitoring]``, else 0)."""

    _window = field_validator("window")(_check_window)

    @field_validator("label_delay")
    @classmethod
    def _delay(cls, value: str | None) -> str | None:
        if value is not None and value.strip() != "0":
            return _check_window(value)
        return value


def run_monitor(ctx: JobContext, params: MonitorParams) -> JobResult:
    """Monitor the window ending at the tick; store results and raise the rules' alerts;
    start the retrainings the alerts ask for."""
    from shipyard.checks import MonitorRequest, monitor_window, retrain_on_alerts
    from shipyard.registry import Registry

    end = ctx.now
    report = None
    ref = params.model
    if params.report:  # the path names the version: resolve the reference once, for both
        version = Registry(ctx.store).resolve(params.model)
        ref = f"{version.model_name}:{version.version}"
        report = Path(
            params.report.format(
                model=version.model_name, version=version.version, date=f"{end:%Y-%m-%dT%H%M%S}"
            )
        )
        try:
            report.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JobFailed(f"cannot write the report to '{report}': {exc}") from exc
    log_root = Path(params.log_dir) if params.log_dir else ctx.log_root
    result = monitor_window(
        ctx.store,
        MonitorRequest(
            ref,
            actor=ctx.actor,
            project=ctx.project,
            log_root=log_root,
            start=end - parse_window(params.window),
            end=end,
            outputs=params.outputs,
            report=report,
            label_delay=params.label_delay,
        ),
    )
    retrains = retrain_on_alerts(
        ctx.store, result.alerts, actor=ctx.actor, project=ctx.project, log_root=log_root
    )
    flagged = result.report.flagged()
    verdict = f"flagged: {', '.join(flagged)}" if flagged else "no drift, no quality breach"
    performance, service = result.performance, result.service
    return JobResult(
        rows=result.report.n_rows,
        message=f"{result.model} v{result.version}: {result.report.n_rows:,} rows, {verdict}"
        + "".join(f"; {outcome.message}" for outcome in retrains),
        details={
            "model": result.model,
            "version": result.version,
            "monitoring_run": result.run_id,
            "drifted": result.report.drifted,
            "flagged": flagged,
            "label_coverage": performance.coverage.coverage if performance else None,
            "requests": service.requests if service else None,
            "report": str(result.report_path.absolute()) if result.report_path else None,
            "alerts": [{"id": a.id, "rule": a.rule, "status": a.status} for a in result.alerts],
            "retrains": [outcome.to_json() for outcome in retrains],
        },
    )


# --- gc -----------------------------------------------------------------------------------


class GcParams(BaseModel):
    """Ages (``90d``, or ``keep``) overriding ``[retention]``; ``archived_artifacts``."""

    model_config = ConfigDict(extra="forbid")

    predictions: str | None = None
    monitoring: str | None = None
    job_runs: str | None = None
    archived_artifacts: bool = False
    log_dir: str | None = None

    @field_validator("predictions", "monitoring", "job_runs")
    @classmethod
    def _age(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_age(value, option="age")
            except InvalidInput as exc:  # a ValueError lets pydantic name the job and field
                raise ValueError(exc.message) from None
        return value


def run_gc(ctx: JobContext, params: GcParams) -> JobResult:
    """Apply retention (``[retention]``, overridden by the job's own ages); audited."""
    from shipyard.housekeeping import collect_garbage

    retention = ctx.project.retention

    def age(value: str | None, default: Any) -> Any:
        return parse_age(value, option="age") if value is not None else default

    report = collect_garbage(
        ctx.store,
        log_root=Path(params.log_dir) if params.log_dir else ctx.log_root,
        predictions_older_than=age(params.predictions, retention.predictions),
        monitoring_older_than=age(params.monitoring, retention.monitoring),
        job_runs_older_than=age(params.job_runs, retention.job_runs),
        archived_artifacts=params.archived_artifacts,
        actor=ctx.actor,
        now=ctx.now,
    )
    rows = report.monitoring_rows + report.job_runs
    return JobResult(
        rows=rows,
        message=f"freed {(report.bytes + report.artifact_bytes) / 1e6:.1f} MB; "
        f"{len(report.partitions)} partition(s), {report.monitoring_rows} monitoring row(s), "
        f"{report.job_runs} job run(s), {len(report.artifacts)} archive(s)",
        details=vars(report),
    )


# --- retrain ------------------------------------------------------------------------------


class RetrainParams(BaseModel):
    """``model`` (required: a name with a ``[models.NAME.retrain]`` table), ``log_dir``,
    ``report_dir`` (the validation reports; default ``reports`` beside the log)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    log_dir: str | None = None
    report_dir: str | None = None


def run_retrain(ctx: JobContext, params: RetrainParams) -> JobResult:
    """Retrain the model (trigger ``schedule:<job>``). A retraining already running is
    reported in the message, not started twice, and does not fail the job; a candidate that
    fails its gates does not either (it waits for the approvers, who are notified)."""
    from shipyard.checks import RetrainRequest, retrain
    from shipyard.errors import InvalidTransition

    request = RetrainRequest(
        params.model,
        actor=ctx.actor,
        project=ctx.project,
        log_root=Path(params.log_dir) if params.log_dir else ctx.log_root,
        trigger=f"schedule:{ctx.job}" if ctx.job else "schedule",
        report_dir=Path(params.report_dir) if params.report_dir else None,
    )
    try:
        result = retrain(ctx.store, request)
    except InvalidTransition as exc:
        return JobResult(message=f"not started: {exc.message}", details={"started": False})
    verdict = "passed its gates" if result.passed else "failed its gates"
    return JobResult(
        rows=result.train_rows + result.eval_rows,
        message=f"{params.model} v{result.version} registered, {verdict}; waiting for approval",
        details={"started": True, **result.to_json()},
    )


# --- command ------------------------------------------------------------------------------


class CommandParams(BaseModel):
    """``command`` (a list: program and arguments, no shell), ``timeout``, ``cwd``."""

    model_config = ConfigDict(extra="forbid")

    command: list[str] = Field(min_length=1)
    timeout: float = Field(default=3600.0, gt=0)
    cwd: str | None = None


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_command(ctx: JobContext, params: CommandParams) -> JobResult:
    """Run the program; a non-zero exit code or a timeout fails the job. It is terminated
    (SIGTERM, then SIGKILL) when it times out or when the scheduler aborts it."""
    try:
        process = subprocess.Popen(
            params.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=params.cwd,
        )
    except OSError as exc:
        raise JobFailed(f"cannot run {params.command[0]}: {exc.strerror or exc}") from exc
    deadline = time.monotonic() + params.timeout
    while True:
        try:
            stdout, stderr = process.communicate(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            if ctx.abort.is_set():
                _terminate(process)
                raise JobFailed(
                    f"{params.command[0]} was terminated: the scheduler stopped"
                ) from None
            if time.monotonic() >= deadline:
                _terminate(process)
                raise JobFailed(
                    f"{params.command[0]} did not finish within {params.timeout:g} s"
                ) from None
    done = subprocess.CompletedProcess(params.command, process.returncode, stdout, stderr)
    if done.returncode != 0:
        last = _tail(done.stderr or done.stdout, 1) or "no output"
        raise JobFailed(f"{params.command[0]} exited with code {done.returncode}: {last}")
    return JobResult(
        message=f"{params.command[0]} exited with code 0",
        details={"exit_code": 0, "stdout": _tail(done.stdout), "stderr": _tail(done.stderr)},
    )


def _terminate(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


# --- digest -------------------------------------------------------------------------------


def run_digest(ctx: JobContext, params: DigestParams) -> JobResult:
    """E-mail the digest (covering the time since this job's last successful run, unless
    ``since`` says otherwise); a subscriber it could not reach fails the job, after every
    other subscriber got theirs."""
    from shipyard.checks import DigestRequest, send_digest

    request = DigestRequest(
        job=ctx.job or "digest",
        channel=params.channel,
        to=tuple(params.to),
        users=tuple(params.users),
        models=tuple(params.models),
        team=params.team,
        link=params.link,
        since=parse_window(params.since, option="since") if params.since else None,
    )
    outcome = send_digest(ctx.store, ctx.project, request, now=ctx.now)
    if outcome.failed:
        failures = "; ".join(f"{a}: {e}" for a, e in outcome.failed.items())
        raise JobFailed(
            f"digest sent to {len(outcome.sent)} of {len(outcome.sent) + len(outcome.failed)} "
            f"subscriber(s); not delivered: {failures}"
        )
    note = (
        f"; users without an e-mail: {', '.join(outcome.users_without_email)}"
        if outcome.users_without_email
        else ""
    )
    return JobResult(
        rows=len(outcome.models),
        message=f"digest of {len(outcome.models)} model(s) sent to "
        f"{len(outcome.sent)} subscriber(s){note}",
        details=outcome.to_json(),
    )


# --- snapshot -----------------------------------------------------------------------------


class SnapshotParams(BaseModel):
    """``model`` (a river model), ``alias`` (default production), ``min_labels`` (fewer new
    labels: nothing registered), ``log_dir``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    alias: str = "production"
    min_labels: int = Field(default=1, ge=1)
    log_dir: str | None = None


def run_snapshot(ctx: JobContext, params: SnapshotParams) -> JobResult:
    """Teach the online learner at ``alias`` the labels logged since it was registered and
    register it as a new version (promotion stays a person's decision)."""
    from shipyard.checks import snapshot_from_log

    outcome = snapshot_from_log(
        ctx.store,
        Path(params.log_dir) if params.log_dir else ctx.log_root,
        params.model,
        actor=ctx.actor,
        trigger=f"schedule:{ctx.job}" if ctx.job else "schedule",
        alias=params.alias,
        min_labels=params.min_labels,
        project=ctx.project,
    )
    if outcome.version is None:
        message = (
            f"{params.model} v{outcome.base}: {outcome.labels} new labels, fewer than "
            f"{params.min_labels}; no snapshot"
        )
    else:
        message = (
            f"{params.model} v{outcome.version} registered: v{outcome.base} taught "
            f"{outcome.labels} labels; waiting for approval"
        )
    return JobResult(rows=outcome.labels, message=message, details=outcome.to_json())


#: Every job kind, by the name ``kind = "..."`` uses. Register a new kind here.
JOB_KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind("monitor", MonitorParams, run_monitor, "Drift and data quality of a log window."),
        JobKind("gc", GcParams, run_gc, "Retention of logs, results, job runs and archives."),
        JobKind("retrain", RetrainParams, run_retrain, "Retrain a model, validate, notify."),
        JobKind("command", CommandParams, run_command, "Any program, e.g. a retraining script."),
        JobKind("digest", DigestParams, run_digest, "E-mail a digest of models to subscribers."),
        JobKind("snapshot", SnapshotParams, run_snapshot, "Teach an online learner, register it."),
    )
}
