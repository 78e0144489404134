"""The scheduler: runs declared jobs on their cron schedules, one run at a time per job.

Each due job runs in its own thread, so a slow job never delays another one's tick; a tick of
a job that is still running is recorded as ``skipped``. A job that raises is recorded as
``failed`` with a one-line message (the traceback goes to the log) and alerted through the
configured channels; the scheduler itself carries on. Stopping (Ctrl-C, SIGTERM, the end of
``run(seconds=...)``) lets running jobs finish for ``grace`` seconds, then records those still
going as interrupted and terminates the programs of ``command`` jobs (none is left orphaned).

On every tick the loop also drives the running rollouts (``promote --canary N --auto``): one
indexed query finds those whose bake has ended, and a thread of their own judges and moves
them (``shipyard.checks.advance_rollouts``), one pass at a time. Everything a rollout needs is
in the database, so a restarted scheduler (or another one) carries on where the last stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.alerting import Alert, AlertRule, Alerts, Channel
from shipyard.config import ProjectConfig
from shipyard.errors import ShipyardError
from shipyard.scheduler._config import JobSpec, SchedulerConfig
from shipyard.scheduler._jobs import JOB_KINDS, JobContext, JobFailed, JobResult
from shipyard.scheduler._runs import FAILED, SKIPPED, SUCCEEDED, JobRuns, this_owner
from shipyard.store import Store
from shipyard.store.tables import JobRun

if TYPE_CHECKING:
    from shipyard.checks import RolloutStep

_log = logging.getLogger("shipyard.scheduler")


def failure_message(exc: BaseException) -> str:
    """One line saying what went wrong, without a traceback."""
    if isinstance(exc, ShipyardError):
        text = exc.message
    elif isinstance(exc, JobFailed):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:2000] or type(exc).__name__


class Scheduler:
    """Runs ``config.jobs`` against ``store``; ``channels`` are the declared alert channels,
    ``project`` the parsed project file the jobs read (alert rules, retention ...).

    >>> project = load_project(Path("shipyard.toml"))  # doctest: +SKIP
    >>> alerts = AlertConfig.from_project(project)  # doctest: +SKIP
    >>> config = SchedulerConfig.from_project(project)  # doctest: +SKIP
    >>> scheduler = Scheduler(store, config, alerts.channels, actor="scheduler",
    ...                       project=project, log_root=Path("log"))  # doctest: +SKIP
    >>> scheduler.run(seconds=60)  # doctest: +SKIP
    """

    def __init__(
        self,
        store: Store,
        config: SchedulerConfig,
        channels: Mapping[str, Channel],
        *,
        actor: str,
        project: ProjectConfig,
        log_root: Path,
        owner: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.channels = dict(channels)
        self.actor = actor
        self.project = project
        self.log_root = log_root
        self.owner = owner or this_owner()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.runs = JobRuns(store, owner=self.owner)
        self._active: dict[int, JobRun] = {}
        self._abort = threading.Event()  # set when stopping and the grace time is over
        self._lock = threading.Lock()
        self._rollouts_failing = False

    # -- one run ---------------------------------------------------------------------------

    def run_job(self, job: JobSpec, *, trigger: str = "manual") -> JobRun:
        """Run ``job`` now in this thread and record it; never raises for a job's failure."""
        now = self.clock()
        run = self.runs.start(job.name, trigger=trigger, now=now)
        if run.status == SKIPPED:
            _log.warning("Job %s skipped: %s", job.name, run.message)
            return run
        with self._lock:
            self._active[run.id] = run
        _log.info("Job %s started (run #%s, %s)", job.name, run.id, trigger)
        try:
            context = JobContext(
                store=self.store,
                actor=self.actor,
                project=self.project,
                log_root=self.log_root,
                now=now,
                abort=self._abort,
                job=job.name,
            )
            result: JobResult = JOB_KINDS[job.kind].run(context, job.params)
        except KeyboardInterrupt:  # Ctrl-C in 'shipyard jobs run': no row is left running
            self.runs.interrupt(run, "interrupted: Ctrl-C")
            raise
        except Exception as exc:  # a failing job never stops the scheduler
            if self._abort.is_set():  # stopped by _stop: recorded as interrupted, not alerted
                _log.warning("Job %s (run #%s) aborted: %s", job.name, run.id, exc)
                return self.runs.finish(
                    run, status=FAILED, message=failure_message(exc), details={"interrupted": True}
                )
            message = failure_message(exc)
            if isinstance(exc, JobFailed | ShipyardError):  # the message says it all
                _log.error("Job %s failed (run #%s): %s", job.name, run.id, message)
            else:  # unexpected: the traceback helps whoever reads the log
                _log.exception("Job %s failed (run #%s)", job.name, run.id)
            details: dict[str, Any] = {"error": type(exc).__name__}
            done = self.runs.finish(run, status=FAILED, message=message, details=details)
            details["alert"] = self._alert(job, done, trigger)
            done = self._save_details(done, details)
        else:
            details = {"rows": result.rows, **result.details}
            done = self.runs.finish(run, status=SUCCEEDED, message=result.message, details=details)
            _log.info("Job %s succeeded in %.2f s: %s", job.name, done.seconds, result.message)
        finally:
            with self._lock:
                self._active.pop(run.id, None)
        return done

    def _alert(self, job: JobSpec, run: JobRun, trigger: str) -> dict[str, Any] | None:
        """Send the failure through the job's (or the scheduler's) channels; store it."""
        names = job.channels if job.channels is not None else self.config.channels
        if not names:
            return None
        rule = AlertRule(
            name=f"job:{job.name}",
            metric="job.failed",
            severity="critical",
            cooldown=self.config.alert_cooldown,
            channels=names,
        )
        seconds = run.seconds or 0.0
        alert = Alert(
            rule=rule.name,
            severity="critical",
            model=job.model or "scheduler",
            version=0,
            metric="job.failed",
            feature=job.name,
            value=1.0,
            threshold=0.0,
            title=f"Job {job.name} failed",
            message=f"Job '{job.name}' ({job.kind}, {trigger}) failed after {seconds:.1f} s: "
            f"{run.message}",
            facts={
                "Job": job.name,
                "Kind": job.kind,
                "Schedule": job.schedule,
                "Trigger": trigger,
                "Run": f"#{run.id} on {run.owner}",
                "Error": run.message,
            },
        )
        try:
            (record,) = Alerts(self.store).raise_all(
                [(rule, alert)], self.channels, actor=self.actor
            )
        except Exception:  # the alert is best effort; the failed run is recorded already
            _log.exception("Could not alert the failure of job %s", job.name)
            return {"status": "error"}
        if record.status == "failed":
            _log.warning(
                "The failure alert of job %s was not delivered: %s", job.name, record.deliveries
            )
        return {"id": record.id, "status": record.status, "deliveries": record.deliveries}

    def _save_details(self, run: JobRun, details: dict[str, Any]) -> JobRun:
        with self.store.write() as session:
            row = session.get(JobRun, run.id)
            if row is not None:
                row.details = dict(details)
                run = row
        return run

    # -- rollouts --------------------------------------------------------------------------

    def advance_rollouts(self) -> list[RolloutStep]:
        """Judge and move the rollouts whose bake has ended, once; never raises (logged).

        >>> [step.action for step in scheduler.advance_rollouts()]  # doctest: +SKIP
        ['stepped']
        """
        from shipyard.checks import advance_rollouts

        try:
            steps = advance_rollouts(
                self.store,
                now=self.clock(),
                project=self.project,
                actor=self.actor,
                log_root=self.log_root,
                channels=self.channels,
            )
        except Exception:  # the store is down: the next tick tries again
            _log.exception("Could not advance the rollouts")
            return []
        for step in steps:
            quiet = step.action in ("stepped", "promoted", "waited")
            _log.log(logging.INFO if quiet else logging.WARNING, "Rollout: %s", step.message)
        return steps

    def _rollouts_due(self) -> bool:
        """Whether a rollout's bake has ended (one indexed query); ``False`` if unreadable."""
        from shipyard.registry import Rollouts

        try:
            due = bool(Rollouts(self.store).due(self.clock()))
        except Exception:
            if not self._rollouts_failing:  # logged once per outage, not every tick
                _log.exception("Could not read the running rollouts")
            self._rollouts_failing = True
            return False
        self._rollouts_failing = False
        return due

    # -- the loop --------------------------------------------------------------------------

    def next_runs(self, after: datetime | None = None) -> dict[str, datetime]:
        """Each job's next scheduled time after ``after`` (default: now)."""
        after = after or self.clock()
        return {job.name: job.next_run(after) for job in self.config.jobs}

    def run_all_once(self) -> list[JobRun]:
        """Run every job once now, one after the other (``shipyard scheduler --once``)."""
        return [self.run_job(job, trigger="schedule") for job in self.config.jobs]

    def run(
        self,
        *,
        seconds: float | None = None,
        stop: threading.Event | None = None,
        grace: float = 30.0,
    ) -> list[JobRun]:
        """Run jobs on schedule until ``stop`` is set, ``seconds`` pass or Ctrl-C.

        Returns the runs started (finished, skipped, failed or interrupted).
        """
        stop = stop or threading.Event()
        self._abort.clear()
        deadline = time.monotonic() + seconds if seconds is not None else None
        due = self.next_runs()
        threads: list[threading.Thread] = []
        results: list[JobRun] = []
        rollouts: threading.Thread | None = None

        def work(job: JobSpec) -> None:
            try:
                results.append(self.run_job(job, trigger="schedule"))
            except Exception:  # the store is down: log it, keep the scheduler alive
                _log.exception("Could not record a run of job %s", job.name)

        _log.info("Scheduler %s started with %d job(s)", self.owner, len(self.config.jobs))
        for row in self.runs.close_abandoned():
            _log.warning("Job %s: closed run #%s as failed: %s", row.job, row.id, row.message)
        try:
            while not stop.is_set():
                now = self.clock()
                for job in self.config.jobs:
                    if due[job.name] <= now:
                        due[job.name] = job.next_run(now)  # missed ticks are not replayed
                        thread = threading.Thread(
                            target=work, args=(job,), name=f"job-{job.name}", daemon=True
                        )
                        thread.start()
                        threads.append(thread)
                if (rollouts is None or not rollouts.is_alive()) and self._rollouts_due():
                    rollouts = threading.Thread(
                        target=self.advance_rollouts, name="rollouts", daemon=True
                    )
                    rollouts.start()
                    threads.append(rollouts)
                threads = [t for t in threads if t.is_alive()]
                wait = min((t - self.clock() for t in due.values()), default=timedelta(1))
                pause = max(0.01, min(wait.total_seconds(), 1.0))
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    pause = min(pause, remaining)
                stop.wait(pause)
        except KeyboardInterrupt:
            _log.info("Interrupted: stopping the scheduler")
        finally:
            self._stop(threads, grace)
        return results

    def _stop(self, threads: list[threading.Thread], grace: float) -> None:
        end = time.monotonic() + grace
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))
        with self._lock:
            left = list(self._active.values())
        # Grace is over: mark the runs interrupted first (the first close of a run wins), then
        # abort the jobs that can end now (commands), so none is left orphaned and the
        # aborted job's own failure never replaces the interrupted mark.
        for run in left:
            _log.warning("Job %s (run #%s) interrupted by the scheduler stopping", run.job, run.id)
            self.runs.interrupt(
                run, f"interrupted: the scheduler stopped before it finished (grace {grace:g} s)"
            )
        if left:
            self._abort.set()
        end = time.monotonic() + 10.0
        for thread in threads:  # let aborted jobs clean up (a command is terminated)
            thread.join(max(0.0, end - time.monotonic()))
        self._abort.clear()  # a later run_job() or run() starts afresh
        _log.info("Scheduler %s stopped", self.owner)
