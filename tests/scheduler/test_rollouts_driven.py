"""The scheduler loop drives rollouts: a rollout started by one process is stepped by one
scheduler, and promoted by another one started afresh on its own store connection (all the
state is in the database); a failing canary is rolled back and alerted through real SMTP."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from alerting_support import SmtpServerFactory

from canary_logs import log_step, register_churn
from gates_off import GATES_OFF_TOML, NO_GATES
from shipyard.alerting import AlertConfig
from shipyard.config import load_project
from shipyard.registry import Registry, Rollouts, Traffic
from shipyard.scheduler import Scheduler, SchedulerConfig
from shipyard.store import Store

MakeScheduler = Callable[..., Scheduler]  # the conftest fixture
BAKE = timedelta(minutes=30)


@pytest.fixture
def churn(store: Store, fitted_pipeline, training_data, approver) -> Registry:  # type: ignore[no-untyped-def]
    """``churn`` v1 (production) and v2 (approved), by alice."""
    return register_churn(
        store, fitted_pipeline, training_data, approver, versions=2, approved=(1, 2)
    )


def run_until(scheduler: Scheduler, done: Callable[[], bool], seconds: float = 20.0) -> None:
    """Run the scheduler loop until ``done()`` holds (checked every 0.1 s) or ``seconds``."""
    stop = threading.Event()

    def watch() -> None:
        for _ in range(int(seconds * 10)):
            if done():
                break
            stop.wait(0.1)
        stop.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    scheduler.run(stop=stop, seconds=seconds, grace=10)
    watcher.join()


def test_a_restarted_scheduler_resumes_a_rollout(
    make_scheduler: MakeScheduler, store: Store, churn: Registry, db_url: str, tmp_path: Path
) -> None:
    log_root = tmp_path / "predictions"  # the scheduler's log_root (conftest)
    t0 = datetime.now(UTC)
    rollout = Rollouts(store, NO_GATES).start(
        "churn", 2, [10, 50], bake=BAKE, actor="alice", now=t0
    )
    log_step(store, log_root, rollout)

    first = make_scheduler(GATES_OFF_TOML, owner="host-a:1")
    first.clock = lambda: t0 + BAKE
    run_until(first, lambda: Rollouts(store, NO_GATES).get(rollout.id).step == 1)
    stepped = Rollouts(store, NO_GATES).get(rollout.id)
    assert stepped.percent == 50 and stepped.running
    assert stepped.details["history"][-1]["outcome"] == "stepped"

    # "Restart": another scheduler, with its own connection to the same database.
    log_step(store, log_root, stepped, seed=7)
    other = Store(db_url, str(tmp_path / "artifacts"), creator="admin").open()
    try:
        project = load_project(tmp_path / "shipyard.toml")
        second = Scheduler(
            other,
            SchedulerConfig.from_project(project),
            AlertConfig.from_project(project).channels,
            actor="scheduler",
            project=project,
            log_root=log_root,
            owner="host-b:2",
            clock=lambda: t0 + 2 * BAKE,
        )
        run_until(second, lambda: not Rollouts(store, NO_GATES).get(rollout.id).running)
    finally:
        other.close()
    done = Rollouts(store, NO_GATES).get(rollout.id)
    assert done.status == "promoted" and done.details["ended_by"] == "scheduler"
    assert churn.aliases("churn")["production"] == 2


def test_the_scheduler_rolls_back_and_mails(
    make_scheduler: MakeScheduler,
    store: Store,
    churn: Registry,
    tmp_path: Path,
    smtp_server: SmtpServerFactory,
) -> None:
    port, handler = smtp_server()
    toml = (
        GATES_OFF_TOML
        + '[scheduler]\nchannels = ["mail"]\n'
        + f'[channels.mail]\ntype = "email"\nhost = "127.0.0.1"\nport = {port}\n'
        + 'from = "shipyard@example.com"\nto = ["ops@example.com"]\ntimeout = 2\n'
    )
    t0 = datetime.now(UTC)
    rollout = Rollouts(store, NO_GATES).start(
        "churn", 2, [10, 50], bake=BAKE, actor="alice", now=t0
    )
    log_step(store, tmp_path / "predictions", rollout, production=900, canary=100, errors=10)
    scheduler = make_scheduler(toml)
    scheduler.clock = lambda: t0 + BAKE
    run_until(scheduler, lambda: bool(handler.envelopes))
    assert Rollouts(store, NO_GATES).get(rollout.id).status == "rolled_back"
    assert Traffic(store).current("churn") is None
    (envelope,) = handler.envelopes
    message = message_from_bytes(envelope.content, policy=default)  # type: ignore[arg-type]
    assert "churn" in str(message["Subject"]) and "rolled back" in str(message["Subject"])
