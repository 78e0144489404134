"""``shipyard scheduler`` and ``shipyard jobs [history | run]``: the jobs of shipyard.toml."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from shipyard.cli._app import (
    JsonOption,
    app,
    client,
    console,
    err_console,
    fail,
    print_json,
    project,
    table,
)
from shipyard.cli._predictions_cmds import LogDirOption, log_root

if TYPE_CHECKING:
    from shipyard.alerting import AlertConfig
    from shipyard.config import ProjectConfig
    from shipyard.scheduler import JobSpec, Scheduler, SchedulerConfig
    from shipyard.store.tables import JobRun

_log = logging.getLogger("shipyard.scheduler")

jobs_app = typer.Typer(
    help="The jobs declared in shipyard.toml (\\[\\[jobs]]) and their runs. Without a command: "
    "list the jobs with their next and last run."
)
app.add_typer(jobs_app, name="jobs")


# --- shared -------------------------------------------------------------------------------


def _load(ctx: typer.Context) -> tuple[ProjectConfig, AlertConfig, SchedulerConfig]:
    """The project file's channels and jobs; a bad file is refused before any work (exit 2)."""
    from shipyard.alerting import AlertConfig
    from shipyard.scheduler import SchedulerConfig

    parsed = project(ctx)
    return parsed, AlertConfig.from_project(parsed), SchedulerConfig.from_project(parsed)


def _scheduler(
    ctx: typer.Context,
    parsed: ProjectConfig,
    alert_config: AlertConfig,
    config: SchedulerConfig,
    log_dir: Path | None,
) -> Scheduler:
    from shipyard.scheduler import Scheduler

    c = client(ctx)
    return Scheduler(
        c.store,
        config,
        alert_config.channels,
        actor=c.user,
        project=parsed,
        log_root=log_root(ctx, log_dir),
    )


def _formatter() -> logging.Formatter:
    formatter = logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime  # UTC, like every time Shipyard stores
    return formatter


@contextmanager
def _logging() -> Iterator[None]:
    """Shipyard's log lines (job started, succeeded, failed...) on stderr while a command runs."""
    logger = logging.getLogger("shipyard")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter())
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextmanager
def _stop_on_signals(stop: threading.Event, grace: float) -> Iterator[None]:
    """SIGTERM and Ctrl-C set ``stop``: the scheduler lets running jobs finish, then exits."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            _log.warning("%s received: already stopping (up to %g s for running jobs)", name, grace)
            return
        _log.info("%s received: stopping (running jobs get up to %g s to finish)", name, grace)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def _interrupted() -> Iterator[None]:
    """Ctrl-C while a job runs in the foreground: one line and exit 130, no traceback."""
    try:
        yield
    except KeyboardInterrupt:
        err_console.print("Interrupted: the run is recorded as failed (interrupted: Ctrl-C).")
        raise typer.Exit(130) from None


def _run_row(run: JobRun) -> dict[str, Any]:
    details = run.details or {}
    return {
        "id": run.id,
        "job": run.job,
        "trigger": run.trigger,
        "owner": run.owner,
        "status": run.status,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "seconds": run.seconds,
        "rows": details.get("rows"),
        "message": run.message,
        "details": details,
    }


def _outcome(job: str, run: JobRun) -> str:
    """One line for people: ``Job x succeeded in 0.12 s: ...``."""
    if run.status == "succeeded":
        head = f"[green]Job {job} succeeded[/] in {run.seconds or 0:.2f} s"
    elif run.status == "skipped":
        head = f"[yellow]Job {job} skipped[/]"
    else:
        head = f"[red]Job {job} {run.status}[/] after {run.seconds or 0:.2f} s"
    text = f"{head} (run #{run.id}): {escape(run.message)}"
    alert = (run.details or {}).get("alert")
    if alert:
        sent = ", ".join(
            f"{name}: {'ok' if d['ok'] else escape(str(d['error']))}"
            for name, d in (alert.get("deliveries") or {}).items()
        )
        text += f" Alert {alert.get('id', '?')} {alert['status']}" + (f" ({sent})" if sent else "")
    return text


# --- shipyard scheduler -------------------------------------------------------------------


@app.command("scheduler")
def scheduler_cmd(
    ctx: typer.Context,
    once: bool = typer.Option(
        False, "--once", help="Run every (selected) job once now and exit; exit 1 if one failed."
    ),
    for_seconds: float = typer.Option(
        None,
        "--for",
        min=0.0,
        help="Stop after this many seconds (default: run until Ctrl-C or SIGTERM).",
    ),
    only: list[str] = typer.Option(
        None, "--job", help="Only this job (repeat the option for several)."
    ),
    grace: float = typer.Option(
        30.0,
        "--grace",
        min=0.0,
        help="When stopping, wait this many seconds for running jobs; those still going are "
        "recorded as interrupted.",
    ),
    log_dir: Path = LogDirOption,
) -> None:
    """Run the jobs of shipyard.toml on their cron schedules, one run at a time per job.

    Every run is recorded ('shipyard jobs history'); a failed job is alerted through the
    \\[scheduler] channels and the scheduler carries on. On every tick it also judges and steps
    the rollouts whose bake ended (promote --canary N --auto). Stops cleanly on Ctrl-C or
    SIGTERM.
    """
    if once and for_seconds is not None:
        raise typer.BadParameter("use either --once or --for, not both.", param_hint="--once")
    parsed, alert_config, config = _load(ctx)
    if only:
        config = config.model_copy(update={"jobs": [config.job(name) for name in only]})
    if not config.jobs and (once or only):
        fail(
            f"No jobs are declared in '{parsed.path}': add \\[\\[jobs]] tables with name, kind and "
            f"schedule (kinds: monitor, gc, retrain, command)."
        )
    scheduler = _scheduler(ctx, parsed, alert_config, config, log_dir)
    if once:
        with _logging(), _interrupted():
            runs = scheduler.run_all_once()
        for job, run in zip(config.jobs, runs, strict=True):
            console.print(_outcome(job.name, run), highlight=False, soft_wrap=True)
        if any(run.status == "failed" for run in runs):
            raise typer.Exit(1)
        return
    now = datetime.now(UTC)
    if not config.jobs:
        console.print(
            f"No jobs are declared in '{parsed.path}': the scheduler drives the rollouts only "
            "(promote --canary N --auto).",
            highlight=False,
        )
    table(
        f"Scheduler {scheduler.owner}: {len(config.jobs)} job(s)",
        ["job", "kind", "schedule", "next run (UTC)"],
        [
            (job.name, job.kind, job.schedule, job.next_run(now).astimezone(UTC))
            for job in config.jobs
        ],
    )
    stop = threading.Event()
    with _logging(), _stop_on_signals(stop, grace):
        runs = scheduler.run(seconds=for_seconds, stop=stop, grace=grace)
    counts = {s: sum(r.status == s for r in runs) for s in ("succeeded", "failed", "skipped")}
    console.print(
        f"Scheduler stopped after {len(runs)} run(s): {counts['succeeded']} succeeded, "
        f"{counts['failed']} failed, {counts['skipped']} skipped.",
        highlight=False,
    )


# --- shipyard jobs ------------------------------------------------------------------------


@jobs_app.callback(invoke_without_command=True)
def jobs_cmd(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """The declared jobs: kind, schedule, next run and last run."""
    if ctx.invoked_subcommand is not None:
        return
    from shipyard.scheduler import JobRuns, this_owner

    parsed, _, config = _load(ctx)
    store = client(ctx, notify=False).store
    last = JobRuns(store, owner=this_owner()).last() if config.jobs else {}
    now = datetime.now(UTC)
    rows = [_job_row(job, last.get(job.name), now) for job in config.jobs]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(f"No jobs are declared in '{parsed.path}': add \\[\\[jobs]] tables.")
        return
    table(
        f"Jobs of {parsed.path}",
        ["job", "kind", "schedule", "model", "next run (UTC)", "last run", "status", "seconds"],
        [
            (
                r["name"],
                r["kind"],
                r["schedule"],
                r["model"],
                r["next_run"],
                r["last_run"]["started_at"] if r["last_run"] else "never",
                r["last_run"]["status"] if r["last_run"] else "",
                r["last_run"]["seconds"] if r["last_run"] else None,
            )
            for r in rows
        ],
    )


def _job_row(job: JobSpec, last: JobRun | None, now: datetime) -> dict[str, Any]:
    return {
        "name": job.name,
        "kind": job.kind,
        "schedule": job.schedule,
        "model": job.model,
        "channels": job.channels,
        "next_run": job.next_run(now).astimezone(UTC),
        "last_run": _run_row(last) if last is not None else None,
    }


@jobs_app.command("history")
def jobs_history_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="Only this job's runs."),
    limit: int = typer.Option(50, min=1, max=100_000),
    as_json: bool = JsonOption,
) -> None:
    """Job runs, newest first: start, end, duration, status, rows and message."""
    from shipyard.scheduler import JobRuns, this_owner

    runs = JobRuns(client(ctx, notify=False).store, owner=this_owner()).history(name, limit=limit)
    rows = [_run_row(run) for run in runs]
    if as_json:
        print_json(rows)
        return
    if not rows:
        which = f"job '{name}'" if name else "any job"
        console.print(f"No runs of {which} yet: 'shipyard scheduler' or 'shipyard jobs run'.")
        return
    table(
        f"Runs of {name}" if name else "Job runs",
        ["id", "job", "trigger", "started (UTC)", "finished", "seconds", "status", "rows", "msg"],
        [
            (
                r["id"],
                r["job"],
                r["trigger"],
                r["started_at"],
                r["finished_at"],
                r["seconds"],
                r["status"],
                r["rows"],
                escape(r["message"]),
            )
            for r in rows
        ],
    )


@jobs_app.command("run")
def jobs_run_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The job's name in shipyard.toml."),
    log_dir: Path = LogDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Run one job now (recorded with trigger 'manual'); exit 1 unless it succeeded."""
    parsed, alert_config, config = _load(ctx)
    job = config.job(name)
    scheduler = _scheduler(ctx, parsed, alert_config, config, log_dir)
    with _logging(), _interrupted():
        run = scheduler.run_job(job, trigger="manual")
    if as_json:
        print_json(_run_row(run))
    else:
        console.print(_outcome(job.name, run), highlight=False, soft_wrap=True)
    if run.status != "succeeded":
        raise typer.Exit(1)
