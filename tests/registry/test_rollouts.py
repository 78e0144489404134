"""``Rollouts``: start, step, wait, roll back, cancel; each one transaction with its audit event,
and a traffic change the rollout did not make cancels it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from canary_logs import register_churn
from gates_off import NO_GATES
from shipyard.errors import ApprovalRequired, InvalidInput, InvalidTransition
from shipyard.registry import Registry, Rollouts, Traffic, check_steps, default_steps
from shipyard.store import Store
from shipyard.store.tables import AuditEvent, Rollout

BAKE = timedelta(minutes=30)


@pytest.fixture
def churn(store: Store, fitted_pipeline, training_data, approver) -> Registry:  # type: ignore[no-untyped-def]
    """``churn`` v1 (production), v2 and v3 approved, v4 not; all by alice."""
    return register_churn(
        store, fitted_pipeline, training_data, approver, versions=4, approved=(1, 2, 3)
    )


def actions(store: Store) -> list[str]:
    with store.read() as session:
        return [
            e.action
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))
            if e.action.startswith("rollout.")
        ]


def rows(store: Store) -> int:
    with store.read() as session:
        return len(session.scalars(select(Rollout)).all())


def test_check_steps() -> None:
    assert check_steps([10, 50, 100]) == (10.0, 50.0, 100.0)
    assert check_steps([5]) == (5.0, 100.0)
    assert default_steps(10) == (10.0, 50.0, 100.0)
    assert default_steps(50) == (50.0, 100.0)
    for bad, message in [
        ([50, 10], "increase strictly"),
        ([10, 10], "increase strictly"),
        ([0, 50], "above 0 and at most 100"),
        ([10, 150], "above 0 and at most 100"),
        ([float("nan")], "above 0 and at most 100"),
        ([100], "below 100%"),
        ([], "at least one step"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            check_steps(bad)


def test_start_sets_the_canary_and_audits(store: Store, churn: Registry) -> None:
    t0 = datetime.now(UTC)
    rollout = Rollouts(store, NO_GATES).start(
        "churn", 2, [10, 50], bake=BAKE, actor="alice", sticky="header:X-User", now=t0
    )
    assert rollout.running and rollout.steps == [10.0, 50.0, 100.0] and rollout.step == 0
    assert rollout.percent == 10 and rollout.next_at == t0 + BAKE
    assert rollout.step_started_at == t0
    policy = Traffic(store, NO_GATES).current("churn")
    assert policy is not None and policy.id == rollout.policy_id
    assert policy.describe() == "canary: production 90%, v2 10% (sticky header:x-user)"
    assert actions(store) == ["rollout.started"]
    assert Rollouts(store, NO_GATES).running("churn") == rollout
    assert Rollouts(store, NO_GATES).history("churn") == [rollout]
    assert "running at 10%" in rollout.describe()
    assert Rollouts(store, NO_GATES).due(t0 + BAKE - timedelta(seconds=1)) == []
    assert Rollouts(store, NO_GATES).due(t0 + BAKE) == [rollout]
    assert Rollouts(store, NO_GATES).due((t0 + BAKE).replace(tzinfo=None)) == [
        rollout
    ]  # naive is UTC


def test_refusals_store_nothing(store: Store, churn: Registry) -> None:
    rollouts = Rollouts(store, NO_GATES)
    with pytest.raises(ApprovalRequired, match="needs an approval"):  # four eyes, as a canary
        rollouts.start("churn", 4, [10], bake=BAKE, actor="alice")
    with pytest.raises(InvalidTransition, match="already churn's production version"):
        rollouts.start("churn", 1, [10], bake=BAKE, actor="alice")
    with pytest.raises(InvalidInput, match="bake time"):
        rollouts.start("churn", 2, [10], bake=timedelta(0), actor="alice")
    with pytest.raises(InvalidInput, match="increase strictly"):
        rollouts.start("churn", 2, [50, 10], bake=BAKE, actor="alice")
    assert rows(store) == 0 and Traffic(store, NO_GATES).current("churn") is None
    first = rollouts.start("churn", 2, [10], bake=BAKE, actor="alice")
    with pytest.raises(InvalidTransition, match="already has a running rollout"):
        rollouts.start("churn", 3, [20], bake=BAKE, actor="alice")
    assert rows(store) == 1 and Traffic(store, NO_GATES).current("churn").id == first.policy_id  # type: ignore[union-attr]
    assert actions(store) == ["rollout.started"]


def test_steps_then_promotes(store: Store, churn: Registry) -> None:
    t0 = datetime.now(UTC)
    rollouts = Rollouts(store, NO_GATES)
    rollout = rollouts.start("churn", 2, [10, 50], bake=BAKE, actor="alice", now=t0)
    t1 = t0 + BAKE
    with pytest.raises(InvalidTransition, match="moved on"):  # not due yet
        rollouts.advance(rollout.id, expect_step=0, actor="bot", now=t1 - timedelta(seconds=1))
    stepped = rollouts.advance(
        rollout.id, expect_step=0, actor="bot", now=t1, judgement={"summary": "ok"}
    )
    assert stepped.percent == 50 and stepped.running and stepped.next_at == t1 + BAKE
    assert stepped.step_started_at == t1 and stepped.policy_id != rollout.policy_id
    assert "v2 50%" in Traffic(store, NO_GATES).current("churn").describe()  # type: ignore[union-attr]
    with pytest.raises(InvalidTransition, match="moved on"):  # a second pass judged step 0
        rollouts.advance(rollout.id, expect_step=0, actor="bot", now=t1)
    done = rollouts.advance(rollout.id, expect_step=1, actor="bot", now=t1 + BAKE)
    assert done.status == "promoted" and done.percent == 100
    assert churn.aliases("churn")["production"] == 2
    assert Traffic(store, NO_GATES).current("churn") is None
    assert [h["outcome"] for h in done.details["history"]] == ["stepped", "promoted"]
    assert actions(store) == ["rollout.started", "rollout.stepped", "rollout.promoted"]
    with pytest.raises(InvalidTransition, match="is promoted"):
        rollouts.advance(rollout.id, expect_step=1, actor="bot", now=t1 + BAKE)


def test_wait_and_roll_back(store: Store, churn: Registry) -> None:
    t0 = datetime.now(UTC)
    rollouts = Rollouts(store, NO_GATES)
    rollout = rollouts.start("churn", 2, [10, 50], bake=BAKE, actor="alice", now=t0)
    waited = rollouts.wait(rollout.id, expect_step=0, actor="bot", now=t0 + BAKE)
    assert waited.details["waits"] == 1 and waited.next_at == t0 + 2 * BAKE
    assert waited.step_started_at == t0  # the window keeps growing from the step's start
    rolled = rollouts.roll_back(
        rollout.id, expect_step=0, actor="bot", now=t0 + 2 * BAKE, judgement={"summary": "bad"}
    )
    assert rolled.status == "rolled_back" and "bad" in rolled.message
    assert (
        Traffic(store, NO_GATES).current("churn") is None
        and churn.aliases("churn")["production"] == 1
    )
    assert actions(store) == ["rollout.started", "rollout.waited", "rollout.rolled_back"]
    # A new rollout may start once the last one ended.
    assert rollouts.start("churn", 3, [10], bake=BAKE, actor="alice").running


@pytest.mark.parametrize("change", ["clear", "rollback", "promote_other", "canary", "shadow"])
def test_a_manual_change_cancels_the_rollout(store: Store, churn: Registry, change: str) -> None:
    t0 = datetime.now(UTC)
    rollouts, traffic = Rollouts(store, NO_GATES), Traffic(store, NO_GATES)
    rollout = rollouts.start("churn", 2, [10, 50], bake=BAKE, actor="alice", now=t0)
    if change == "clear":
        traffic.clear("churn", actor="carol", reason="enough")
    elif change == "rollback":
        traffic.rollback("churn", actor="carol")
    elif change == "promote_other":
        churn.promote("churn", 3, actor="carol")
    elif change == "canary":
        traffic.canary("churn", 2, 30, actor="carol")
    else:
        traffic.shadow("churn", 3, actor="carol")
    cancelled = rollouts.get(rollout.id)
    assert cancelled.status == "cancelled" and "carol changed the traffic policy" in (
        cancelled.message
    )
    assert cancelled.details["ended_by"] == "carol"
    assert actions(store) == ["rollout.started", "rollout.cancelled"]
    assert rollouts.running("churn") is None and rollouts.due(t0 + BAKE) == []
    with pytest.raises(InvalidTransition, match="is cancelled"):
        rollouts.advance(rollout.id, expect_step=0, actor="bot", now=t0 + BAKE)


def test_cancel_leaves_the_canary(store: Store, churn: Registry) -> None:
    rollouts = Rollouts(store, NO_GATES)
    rollout = rollouts.start("churn", 2, [10], bake=BAKE, actor="alice")
    cancelled = rollouts.cancel("churn", actor="carol", reason="by hand from here")
    assert cancelled.status == "cancelled" and "the canary stays" in cancelled.message
    assert Traffic(store, NO_GATES).current("churn").id == rollout.policy_id  # type: ignore[union-attr]
    with pytest.raises(InvalidTransition, match="no running rollout"):
        rollouts.cancel("churn", actor="carol")
