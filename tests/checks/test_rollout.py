"""``advance_rollouts`` on real prediction logs: steps 10 → 50 → 100 and promotes, rolls a
failing canary back with an alert through a real webhook, waits for traffic, acts once when two
passes race."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gates_off import NO_GATES

sys.path.insert(0, str(Path(__file__).parents[1] / "alerting"))  # alerting_support

from alerting_support import HttpRecorder

from canary_logs import log_step, register_churn
from shipyard.alerting import Alerts
from shipyard.checks import RolloutStep, advance_rollouts
from shipyard.config import ProjectConfig
from shipyard.registry import Registry, Rollouts, Traffic
from shipyard.store import Store
from shipyard.store.tables import AuditEvent

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

BAKE = timedelta(minutes=30)


@pytest.fixture
def churn(store: Store, fitted_pipeline, training_data, approver) -> Registry:  # type: ignore[no-untyped-def]
    """``churn`` v1 (production) and v2 (approved), by alice."""
    return register_churn(
        store, fitted_pipeline, training_data, approver, versions=2, approved=(1, 2)
    )


@pytest.fixture
def webhook() -> Iterator[HttpRecorder]:
    """A real HTTP server on a free port, answering 200 and recording what it is sent."""
    server = HttpRecorder([200])
    yield server
    server.close()


def project(webhook: str | None = None) -> ProjectConfig:
    data: dict[str, object] = {"gates": {"require": False}}
    if webhook is not None:
        data["channels"] = {"oncall": {"type": "webhook", "url": webhook, "timeout": 2}}
        data["scheduler"] = {"channels": ["oncall"]}
    return ProjectConfig.model_validate(data)


def advance(store: Store, log_root: Path, now: datetime, **kwargs: object) -> list[RolloutStep]:
    kwargs.setdefault("project", project())
    return advance_rollouts(
        store,
        now=now,
        actor="scheduler",
        log_root=log_root,
        **kwargs,  # type: ignore[arg-type]
    )


def rollout_events(store: Store) -> list[str]:
    with store.read() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    return [e.action for e in events if e.action.startswith(("rollout.", "version.promoted"))]


def test_steps_10_50_100_and_promotes(store: Store, churn: Registry, tmp_path: Path) -> None:
    log_root = tmp_path / "log"
    t0 = datetime.now(UTC)
    rollout = Rollouts(store, NO_GATES).start(
        "churn", 2, [10, 50, 100], bake=BAKE, actor="alice", now=t0
    )
    log_step(store, log_root, rollout)
    assert advance(store, log_root, t0 + BAKE - timedelta(seconds=1)) == []  # still baking
    (step,) = advance(store, log_root, t0 + BAKE)
    assert step.action == "stepped" and step.verdict is not None
    assert step.verdict.decision == "promote" and step.rollout.percent == 50
    assert "10% → 50%" in step.message
    assert "v2 50%" in Traffic(store, NO_GATES).current("churn").describe()  # type: ignore[union-attr]
    assert advance(store, log_root, t0 + BAKE) == []  # the new step bakes from now
    log_step(store, log_root, step.rollout, seed=10)
    (last,) = advance(store, log_root, t0 + 2 * BAKE)
    assert last.action == "promoted" and last.rollout.status == "promoted"
    # The second step was judged on its own requests only.
    assert last.verdict is not None and last.verdict.candidate.requests == 200
    assert churn.aliases("churn")["production"] == 2
    assert Traffic(store, NO_GATES).current("churn") is None
    assert rollout_events(store) == [
        "version.promoted",  # v1, by the fixture
        "rollout.started",
        "rollout.stepped",
        "version.promoted",
        "rollout.promoted",
    ]
    done = Rollouts(store, NO_GATES).get(rollout.id)
    assert [h["decision"] for h in done.details["history"]] == ["promote", "promote"]
    assert done.details["ended_by"] == "scheduler"
    assert advance(store, log_root, t0 + 10 * BAKE) == []


def test_failing_canary_is_rolled_back_and_alerted(
    store: Store, churn: Registry, tmp_path: Path, webhook: HttpRecorder
) -> None:
    hook = webhook
    log_root = tmp_path / "log"
    t0 = datetime.now(UTC)
    rollout = Rollouts(store, NO_GATES).start(
        "churn", 2, [10, 50], bake=BAKE, actor="alice", now=t0
    )
    log_step(store, log_root, rollout, production=900, canary=100, errors=10)
    (step,) = advance(store, log_root, t0 + BAKE, project=project(hook.url))
    assert step.action == "rolled_back" and step.rollout.status == "rolled_back"
    assert step.verdict is not None and [g.name for g in step.verdict.failed] == ["errors"]
    assert Traffic(store, NO_GATES).current("churn") is None
    assert churn.aliases("churn")["production"] == 1
    # Alerted through the [scheduler] channel, stored and audited.
    assert step.alert is not None and step.alert["status"] == "sent"
    (request,) = hook.requests
    assert "rolled back at 10%" in str(request.body)
    (record,) = Alerts(store).list(model="churn")
    assert record.rule == "rollout:churn" and record.metric == "rollout.rolled_back"
    assert record.severity == "critical" and record.feature == "errors"
    assert "rollout.rolled_back" in rollout_events(store)
    with store.read() as session:
        actions = [e.action for e in session.scalars(select(AuditEvent))]
    assert "alert.sent" in actions and "traffic.cleared" in actions
    assert "errors" in Rollouts(store, NO_GATES).get(rollout.id).message


def test_too_few_requests_wait_then_alert_once_as_stalled(
    store: Store, churn: Registry, tmp_path: Path, webhook: HttpRecorder
) -> None:
    hook = webhook
    log_root = tmp_path / "log"
    t0 = datetime.now(UTC)
    rollout = Rollouts(store, NO_GATES).start(
        "churn", 2, [10, 50], bake=BAKE, actor="alice", now=t0
    )
    log_step(store, log_root, rollout, production=50, canary=10)
    config = project(hook.url)
    actions = []
    for i in range(1, 5):
        (step,) = advance(store, log_root, t0 + i * BAKE, project=config, max_waits=2)
        actions.append((step.action, step.rollout.details["waits"], step.alert is not None))
    assert actions == [
        ("waited", 1, False),
        ("waited", 2, True),  # stalled: alerted once, keeps waiting
        ("waited", 3, False),
        ("waited", 4, False),
    ]
    assert "stalled" in step.message and "requests" in step.message
    assert len(hook.requests) == 1 and "stalled" in str(hook.requests[0].body)
    assert Rollouts(store, NO_GATES).get(rollout.id).running
    # Traffic arrives: the window since the step began now holds enough requests.
    log_step(store, log_root, rollout, seed=5)
    (step,) = advance(store, log_root, t0 + 5 * BAKE, project=config)
    assert step.action == "stepped" and step.rollout.details["waits"] == 0


def test_an_inconclusive_step_moves_up_but_never_promotes(
    store: Store, churn: Registry, tmp_path: Path
) -> None:
    # 4/100 canary errors vs 1/100: above the 2-point margin, not significant: "wait" with
    # enough requests.
    log_root = tmp_path / "log"
    t0 = datetime.now(UTC)
    rollout = Rollouts(store, NO_GATES).start(
        "churn", 2, [10, 50], bake=BAKE, actor="alice", now=t0
    )
    log_step(store, log_root, rollout, production=100, canary=100, errors=4)
    (step,) = advance(store, log_root, t0 + BAKE)
    assert step.verdict is not None and step.verdict.decision == "wait"
    assert step.action == "stepped" and step.rollout.percent == 50
    log_step(store, log_root, step.rollout, production=100, canary=100, errors=4, seed=3)
    (step,) = advance(store, log_root, t0 + 2 * BAKE)
    assert step.action == "waited" and step.rollout.running  # the last step must pass cleanly
    assert churn.aliases("churn")["production"] == 1


def test_two_passes_at_once_act_once(store: Store, churn: Registry, tmp_path: Path) -> None:
    log_root = tmp_path / "log"
    t0 = datetime.now(UTC)
    rollout = Rollouts(store, NO_GATES).start(
        "churn", 2, [10, 50], bake=BAKE, actor="alice", now=t0
    )
    log_step(store, log_root, rollout)
    barrier = threading.Barrier(2)
    results: list[list[RolloutStep]] = []

    def one() -> None:
        barrier.wait()
        results.append(advance(store, log_root, t0 + BAKE))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = [s.action for steps in results for s in steps]
    assert done.count("stepped") == 1 and set(done) <= {"stepped", "skipped"}
    assert rollout_events(store).count("rollout.stepped") == 1
    assert Rollouts(store, NO_GATES).get(rollout.id).percent == 50


def test_a_manual_clear_stops_the_rollout(store: Store, churn: Registry, tmp_path: Path) -> None:
    log_root = tmp_path / "log"
    t0 = datetime.now(UTC)
    rollout = Rollouts(store, NO_GATES).start(
        "churn", 2, [10, 50], bake=BAKE, actor="alice", now=t0
    )
    log_step(store, log_root, rollout)
    Traffic(store, NO_GATES).clear("churn", actor="carol", reason="by hand")
    assert advance(store, log_root, t0 + BAKE) == []
    assert Rollouts(store, NO_GATES).get(rollout.id).status == "cancelled"
    assert Traffic(store, NO_GATES).current("churn") is None
    assert rollout_events(store)[-2:] == ["rollout.started", "rollout.cancelled"]


def test_a_step_that_cannot_be_judged_waits_a_bake_and_alerts_once(
    store: Store, churn: Registry, tmp_path: Path, webhook: HttpRecorder
) -> None:
    from shipyard.checks import CanaryRules

    log_root = tmp_path / "log"
    t0 = datetime.now(UTC)
    rollout = Rollouts(store, NO_GATES).start(
        "churn", 2, [10, 50], bake=BAKE, actor="alice", now=t0
    )
    broken = {"rules": CanaryRules(min_requests=0), "project": project(webhook.url)}
    (step,) = advance(store, log_root, t0 + BAKE, **broken)
    assert step.action == "failed" and "could not judge the canary" in step.message
    assert "min_requests" in step.message
    assert step.alert is not None and step.alert["status"] == "sent"
    after = Rollouts(store, NO_GATES).get(rollout.id)
    assert after.running and after.step == 0 and after.next_at == t0 + 2 * BAKE  # no spinning
    assert advance(store, log_root, t0 + BAKE) == []
    (again,) = advance(store, log_root, t0 + 2 * BAKE, **broken)
    assert again.action == "failed" and again.alert is None  # alerted once per step
    (request,) = webhook.requests
    assert "stuck at 10%" in str(request.body)


def test_notify_rules_select_rollout_events(
    store: Store, churn: Registry, webhook: HttpRecorder
) -> None:
    from shipyard.alerting import Notifier, attach_notifier

    config = ProjectConfig.model_validate(
        {
            "gates": {"require": False},
            "channels": {"team": {"type": "webhook", "url": webhook.url, "timeout": 2}},
            "notify": [{"events": ["rollout.*"], "channels": ["team"]}],
        }
    )
    notifier = attach_notifier(store, config)
    assert isinstance(notifier, Notifier)
    try:
        Rollouts(store, config).start("churn", 2, [10], bake=BAKE, actor="alice")
        Traffic(store, NO_GATES).clear("churn", actor="carol")
        assert notifier.flush(timeout=10)  # notifications go out from a background thread
    finally:
        store.listeners.remove(notifier)
    bodies = [str(r.body) for r in webhook.requests]
    assert len(bodies) == 2  # rollout.started and rollout.cancelled, not the traffic events
    assert "Rollout #1 of churn v2 started (alice)" in bodies[0]
    assert "cancelled (carol)" in bodies[1] and "changed the traffic policy" in bodies[1]
