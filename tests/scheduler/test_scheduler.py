"""The scheduler loop on a real store: cron ticks, one run at a time, failures recorded and
alerted through real SMTP and HTTP servers, channels that fail, abandoned runs."""

from __future__ import annotations

import itertools
import json
import re
import socket
import subprocess
import threading
from collections.abc import Callable
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from alerting_support import HttpRecorder, SmtpServerFactory

from shipyard.alerting import Alerts
from shipyard.scheduler import JobRuns, Scheduler
from shipyard.store import Store
from shipyard.store.tables import JobRun, utcnow

MakeScheduler = Callable[..., Scheduler]  # the conftest fixture


def job(name: str, schedule: str, command: list[str], extra: str = "") -> str:
    return (
        f'[[jobs]]\nname = "{name}"\nkind = "command"\nschedule = "{schedule}"\n'
        f"command = {json.dumps(command)}\n{extra}\n"
    )


def email_channel(name: str, port: int) -> str:
    return (
        f'[channels.{name}]\ntype = "email"\nhost = "127.0.0.1"\nport = {port}\n'
        f'from = "shipyard@example.com"\nto = ["ops@example.com"]\n'
        f"timeout = 0.5\nattempts = 1\nbackoff = 0.01\n"
    )


def webhook_channel(name: str, url: str) -> str:
    return f'[channels.{name}]\ntype = "webhook"\nurl = "{url}"\ntimeout = 0.5\nattempts = 1\n'


def runs_of(store: Store, name: str) -> list[JobRun]:
    """Oldest first."""
    return list(reversed(JobRuns(store, owner="test:0").history(name, limit=1000)))


def test_a_seconds_cron_runs_a_command_job_and_records_each_run(
    make_scheduler: MakeScheduler, store: Store
) -> None:
    scheduler = make_scheduler(job("tick", "* * * * * */1", ["sh", "-c", "echo tick"]))
    returned = scheduler.run(seconds=2.2)
    runs = runs_of(store, "tick")
    assert len(runs) >= 2, [r.status for r in runs]
    assert sorted(r.id for r in returned) == [r.id for r in runs]
    for run in runs:
        assert run.status == "succeeded" and run.trigger == "schedule"
        assert run.owner == scheduler.owner
        assert run.message == "sh exited with code 0"
        assert run.details["stdout"] == "tick" and run.details["rows"] == 0
        assert run.finished_at is not None and run.seconds is not None
        assert run.finished_at >= run.started_at
        assert abs((run.finished_at - run.started_at).total_seconds() - run.seconds) < 1e-3
        assert run.started_at.microsecond < 500_000  # started on the tick: a whole second
    starts = [r.started_at for r in runs]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert all(0.5 < gap < 1.6 for gap in gaps), gaps  # one per second, none missed


def test_one_run_at_a_time_across_two_schedulers_on_one_store(
    make_scheduler: MakeScheduler, store: Store, tmp_path: Path
) -> None:
    """Two schedulers (two processes: different owners) tick a job slower than its period."""
    trace = tmp_path / "trace.txt"  # what the job itself sees: start and end, in turn
    script = f"echo start >> {trace}; sleep 1.3; echo end >> {trace}"
    toml = job("slow", "* * * * * */1", ["sh", "-c", script])
    first = make_scheduler(toml, owner="host-a:1")
    second = make_scheduler(toml, owner="host-b:2")
    other = threading.Thread(target=second.run, kwargs={"seconds": 2.2})
    other.start()
    first.run(seconds=2.2)
    other.join()
    runs = runs_of(store, "slow")
    ran = [r for r in runs if r.status != "skipped"]
    skipped = [r for r in runs if r.status == "skipped"]
    assert ran and all(r.status == "succeeded" for r in ran)  # the stop waited for them
    assert len(skipped) >= 2 and {r.owner for r in runs} == {"host-a:1", "host-b:2"}
    assert trace.read_text().split() == ["start", "end"] * len(ran)  # never two at once
    by_id = {r.id: r for r in ran}
    crossed = 0
    for skip in skipped:
        found = re.fullmatch(
            r"run #(\d+) \(started [\d-]+ [\d:]+ by (host-[ab]:\d)\) is still running",
            skip.message,
        )
        assert found, skip.message
        running = by_id[int(found[1])]
        assert running.owner == found[2] and skip.details == {"running": running.id}
        # started_at is the tick, read just before the start transaction queued for the lock
        assert running.started_at - timedelta(seconds=0.5) <= skip.started_at
        assert running.finished_at is not None and skip.started_at <= running.finished_at
        assert skip.seconds == 0.0
        crossed += running.owner != skip.owner
    assert crossed >= 1  # one scheduler was held back by the other's run


ALERTED = """
[scheduler]
channels = ["mail", "hook"]
alert_cooldown = "1h"
"""


def test_a_failing_job_is_recorded_alerted_once_and_the_others_keep_running(
    make_scheduler: MakeScheduler,
    store: Store,
    smtp_server: SmtpServerFactory,
    http_server: Callable[..., HttpRecorder],
) -> None:
    port, smtp = smtp_server()
    hook = http_server(200)
    failing = ["sh", "-c", "echo starting; echo 'disk full: /data' >&2; exit 3"]
    toml = (
        email_channel("mail", port)
        + webhook_channel("hook", hook.url)
        + ALERTED
        + job("nightly-retrain", "* * * * * */1", failing)
        + job("heartbeat", "* * * * * */1", ["true"])
    )
    make_scheduler(toml).run(seconds=2.2)

    failed = runs_of(store, "nightly-retrain")
    assert len(failed) >= 2 and all(r.status == "failed" for r in failed)
    for run in failed:
        assert run.message == "sh exited with code 3: disk full: /data"
        assert run.details["error"] == "JobFailed"
    first, *later = (r.details["alert"] for r in failed)
    assert first["status"] == "sent"
    assert first["deliveries"]["mail"]["ok"] and first["deliveries"]["hook"]["ok"]
    assert all(a["status"] == "suppressed" for a in later)  # the cool-down holds
    beats = runs_of(store, "heartbeat")
    assert len(beats) >= 2 and all(r.status == "succeeded" for r in beats)

    (envelope,) = smtp.envelopes
    assert isinstance(envelope.content, bytes)
    mail = message_from_bytes(envelope.content, policy=default)
    assert isinstance(mail, EmailMessage)
    assert mail["Subject"] == "[Shipyard critical] Job nightly-retrain failed"
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Job 'nightly-retrain' (command, schedule) failed after" in text
    assert "Error: sh exited with code 3: disk full: /data" in text
    assert f"Run: #{failed[0].id}" in text
    (request,) = hook.requests
    assert request.body["alert"]["feature"] == "nightly-retrain"
    assert request.body["alert"]["metric"] == "job.failed"
    assert "disk full: /data" in request.body["text"]

    stored = Alerts(store).list()
    assert [a.rule for a in stored] == ["job:nightly-retrain"] * len(failed)
    assert sorted(a.status for a in stored) == ["sent"] + ["suppressed"] * len(later)
    assert stored[-1].id == first["id"] and "disk full: /data" in stored[-1].message


def test_channels_that_refuse_hang_or_fail_leave_the_run_failed_and_the_scheduler_alive(
    make_scheduler: MakeScheduler,
    store: Store,
    smtp_server: SmtpServerFactory,
    http_server: Callable[..., HttpRecorder],
    hanging_port: int,
) -> None:
    refusing_port, refusing = smtp_server(data_reply="550 5.7.1 Message rejected as spam")
    broken = http_server(500)
    toml = (
        email_channel("refusing", refusing_port)
        + email_channel("hanging", hanging_port)
        + webhook_channel("broken", broken.url)
        + "".join(
            job(f"to-{name}", "* * * * * */1", ["false"], f'channels = ["{name}"]')
            for name in ("refusing", "hanging", "broken")
        )
    )
    make_scheduler(toml).run(seconds=2.2, grace=5)

    explained = {
        "refusing": "550",
        "hanging": "did not answer within 0.5 s",
        "broken": "500",
    }
    for name, reason in explained.items():
        runs = runs_of(store, f"to-{name}")
        assert len(runs) >= 2, f"{name}: the scheduler stopped ticking"  # the next tick ran
        assert all(r.status == "failed" for r in runs)
        assert all(r.message == "false exited with code 1: no output" for r in runs)
        alert: dict[str, Any] = runs[0].details["alert"]
        assert alert["status"] == "failed", name
        delivery = alert["deliveries"][name]
        assert delivery["ok"] is False and reason in delivery["error"], (name, delivery)
        (record,) = [a for a in Alerts(store).list() if a.id == alert["id"]]
        assert record.status == "failed" and record.deliveries == alert["deliveries"]
        # a failed delivery counts for the cool-down: the next failures are not re-sent
        assert all(r.details["alert"]["status"] == "suppressed" for r in runs[1:])
    assert refusing.data_calls == 1 and len(broken.requests) == 1


def test_an_abandoned_running_row_of_a_dead_process_is_closed_as_failed(
    make_scheduler: MakeScheduler, store: Store
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    rows = {
        "dead": JobRun(job="crashed", owner=f"{host}:{dead.pid}"),
        "elsewhere": JobRun(job="remote", owner="another-host:4242"),
    }
    with store.write() as session:
        for row in rows.values():
            row.trigger, row.started_at, row.status = "schedule", utcnow(), "running"
            row.message, row.details = "", {}
            session.add(row)
    toml = job("crashed", "0 0 1 1 *", ["true"]) + job("remote", "0 0 1 1 *", ["true"])
    scheduler = make_scheduler(toml)
    assert scheduler.run(seconds=0.2) == []  # nothing due: only the start-up sweep ran

    (crashed,) = runs_of(store, "crashed")
    assert crashed.status == "failed" and crashed.finished_at is not None
    assert crashed.message == f"abandoned: scheduler process {host}:{dead.pid} is gone"
    (remote,) = runs_of(store, "remote")
    assert remote.status == "running"  # another machine's run: trusted, never closed here
    # and the job whose run is still going elsewhere is skipped, not run twice
    skipped = scheduler.run_job(scheduler.config.job("remote"))
    assert skipped.status == "skipped" and "by another-host:4242" in skipped.message
    again = scheduler.run_job(scheduler.config.job("crashed"), trigger="manual")
    assert again.status == "succeeded" and again.trigger == "manual"


def test_a_command_past_its_timeout_is_terminated_and_fails(
    make_scheduler: MakeScheduler, store: Store, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    command = ["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"]
    scheduler = make_scheduler(job("stuck", "0 0 1 1 *", command, "timeout = 0.3"))
    run = scheduler.run_job(scheduler.config.job("stuck"))
    assert run.status == "failed" and run.message == "sh did not finish within 0.3 s"
    assert run.seconds is not None and run.seconds < 5
    assert not Path(f"/proc/{pidfile.read_text().strip()}").exists()  # terminated and reaped


def test_stopping_interrupts_a_running_command_after_the_grace_time(
    make_scheduler: MakeScheduler, store: Store, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    command = ["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"]
    scheduler = make_scheduler(job("long", "* * * * * */1", command))
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()  # what SIGTERM does in 'shipyard scheduler'
    returned = scheduler.run(stop=stop, grace=0.2)
    runs = runs_of(store, "long")
    (run,) = [r for r in runs if r.status != "skipped"]  # a later tick may have been skipped
    assert run.status == "failed" and run.details == {"interrupted": True}
    assert run.message == "interrupted: the scheduler stopped before it finished (grace 0.2 s)"
    assert sorted((r.id, r.status) for r in returned) == [(r.id, r.status) for r in runs]
    assert not Path(f"/proc/{pidfile.read_text().strip()}").exists()  # no orphan left
    assert Alerts(store).list() == []  # stopping is not a job failure: nothing alerted
