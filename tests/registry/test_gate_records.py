"""Gate records and waivers: promotion, canary and split honour the newest record of the
version's archive digest; waivers by approvers only; admins may force with a reason."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard import Client, Settings
from shipyard.audit import verify
from shipyard.config import ProjectConfig
from shipyard.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidTransition,
    PermissionDenied,
)
from shipyard.registry import Gates, Registry
from shipyard.store import Store

GATED = ProjectConfig()  # the default: promotions need a passing gate record


def _client(store: Store, user: str, project: ProjectConfig = GATED) -> Client:
    return Client(Settings(user=user), store=store, project=project).open()


def _report(failed: list[str]) -> dict[str, Any]:
    gates = [
        {"name": "metric:roc_auc", "passed": True, "value": 0.91, "limit": 0.9, "detail": "ok"},
        *(
            {"name": g, "passed": False, "value": 0.6, "limit": 0.8, "detail": "bad"}
            for g in failed
        ),
    ]
    return {"passed": not failed, "gates": gates}


def _record(store: Store, version: int, failed: list[str], digest: str | None = None) -> None:
    mv = Registry(store).get_version("churn", version)
    Gates(store).record(
        "churn",
        version,
        digest=digest or mv.digest,
        passed=not failed,
        failed=failed,
        champion=None,
        data_source="test rows",
        report=_report(failed),
        actor="alice",
    )


@pytest.fixture
def versions(store: Store, fitted_pipeline, training_data) -> Store:  # type: ignore[no-untyped-def]
    """churn v1 (production, through a passing record) and v2, both approved by bob."""
    admin = _client(store, "admin")
    admin.users.set_role("bob", "approver", actor="admin")
    alice = _client(store, "alice")
    X, y, _, _ = training_data
    for _ in range(2):
        alice.register(fitted_pipeline, name="churn", X_train=X, y_train=y, onnx=False)
    bob = _client(store, "bob")
    for v in (1, 2):
        bob.approve("churn", v, reason="fine")
    _record(store, 1, [])
    alice.promote("churn", 1)
    return store


def test_no_record_no_promotion(versions: Store) -> None:
    alice = _client(versions, "alice")
    with pytest.raises(InvalidTransition, match=r"no gate record.*shipyard validate churn 2"):
        alice.promote("churn", 2)
    with pytest.raises(InvalidTransition, match="no gate record"):
        alice.traffic.canary("churn", 2, 10, actor="alice")
    with pytest.raises(InvalidTransition, match="no gate record"):
        alice.traffic.split("churn", {None: 50, 2: 50}, actor="alice")
    assert alice.registry.aliases("churn") == {"production": 1}
    assert alice.traffic.current("churn") is None
    # other aliases are not gated
    alice.promote("churn", 2, to="staging")


def test_failed_gates_named_and_waived(versions: Store) -> None:
    _record(versions, 2, ["fairness:sex", "serving_cost"])
    alice, bob = _client(versions, "alice"), _client(versions, "bob")
    with pytest.raises(InvalidTransition, match=r"fairness:sex, serving_cost failed") as info:
        alice.promote("churn", 2)
    assert "shipyard validate churn 2 --show" in str(info.value)
    gates = Gates(versions)
    with pytest.raises(PermissionDenied, match="only users with the approver role"):
        gates.waive("churn", 2, "fairness:sex", actor="carol", reason="x")
    with pytest.raises(PermissionDenied, match="author"):
        _client(versions, "admin").users.set_role("alice", "approver", actor="admin")
        gates.waive("churn", 2, "fairness:sex", actor="alice", reason="mine")
    with pytest.raises(InvalidInput, match="did not fail"):
        gates.waive("churn", 2, "metric:roc_auc", actor="bob", reason="x")
    with pytest.raises(InvalidInput, match="reason"):
        gates.waive("churn", 2, "fairness:sex", actor="bob", reason=" ")
    gates.waive("churn", 2, "fairness:sex", actor="bob", reason="groups too small to judge")
    with pytest.raises(AlreadyExists):
        gates.waive("churn", 2, "fairness:sex", actor="bob", reason="again")
    with pytest.raises(InvalidTransition, match=r"serving_cost failed"):
        alice.promote("churn", 2)  # one gate is still open
    gates.waive("churn", 2, "serving_cost", actor="bob", reason="p99 is 3 ms")
    bob.traffic.canary("churn", 2, 10, actor="bob")  # now every failed gate carries a waiver
    [waiver, _] = gates.waivers("churn", 2)
    assert (waiver.gate, waiver.approver, waiver.reason) == (
        "fairness:sex",
        "bob",
        "groups too small to judge",
    )
    with versions.read() as session:
        actions = [e.action for e in _events(session)]
        assert actions.count("gate.waived") == 2
        assert verify(session).ok


def test_the_newest_record_rules_and_is_bound_to_the_digest(versions: Store) -> None:
    alice = _client(versions, "alice")
    _record(versions, 2, [])
    _record(versions, 2, ["metric:roc_auc"])  # a later validation failed: refused again
    with pytest.raises(InvalidTransition, match="metric:roc_auc failed"):
        alice.promote("churn", 2)
    with pytest.raises(InvalidTransition, match="archive changed"):
        _record(versions, 2, [], digest="sha256:" + "0" * 64)
    _record(versions, 2, [])
    alice.promote("churn", 2)
    assert alice.registry.aliases("churn")["production"] == 2
    assert [r.passed for r in Gates(versions).history("churn", 2)] == [True, False, True]


def test_force_needs_an_admin_and_a_reason(versions: Store) -> None:
    alice, admin = _client(versions, "alice"), _client(versions, "admin")
    with pytest.raises(PermissionDenied, match="only admins"):
        alice.promote("churn", 2, force=True, reason="hurry")
    with pytest.raises(InvalidInput, match="needs a reason"):
        admin.promote("churn", 2, force=True)
    admin.promote("churn", 2, force=True, reason="incident 42: v1 leaks PII")
    with versions.read() as session:
        [event] = [e for e in _events(session) if e.action == "gates.overridden"]
        assert event.actor == "admin" and event.reason == "incident 42: v1 leaks PII"
        assert event.details["failed"] == ["(not validated)"]


def test_policy_may_switch_the_rule_off(versions: Store) -> None:
    # the project-wide default may be off while one model keeps it on
    strict = ProjectConfig.model_validate(
        {"gates": {"require": False}, "models": {"churn": {"require_gates": True}}}
    )
    with pytest.raises(InvalidTransition, match="no gate record"):
        _client(versions, "alice", strict).promote("churn", 2)
    project = ProjectConfig.model_validate({"models": {"churn": {"require_gates": False}}})
    _client(versions, "alice", project).promote("churn", 2)
    assert Registry(versions).aliases("churn")["production"] == 2


def test_objective_and_criterion_recorded(store: Store) -> None:
    registry = Registry(store)
    model = registry.create_model(
        "churn", actor="alice", objective="Keep customers", accept="roc_auc>=0.8"
    )
    assert (model.objective, model.accept) == ("Keep customers", "roc_auc >= 0.8")
    with pytest.raises(AlreadyExists):
        registry.create_model("churn", actor="alice")
    with pytest.raises(InvalidInput, match="does not parse"):
        registry.create_model("other", actor="alice", accept="auc is high")
    with pytest.raises(InvalidInput, match="Unknown metric 'auc'"):
        registry.set_objective("churn", actor="alice", accept="auc >= 0.8")
    assert registry.list_models()[0].name == "churn"  # nothing half-written
    assert [m.name for m in registry.list_models()] == ["churn"]
    policy = registry.policy("churn")
    assert str(policy.accept) == "roc_auc >= 0.8" and policy.objective == "Keep customers"
    # shipyard.toml wins over the recorded criterion
    file_says = ProjectConfig.model_validate({"models": {"churn": {"accept": "accuracy > 0.9"}}})
    assert str(Registry(store, file_says).policy("churn").accept) == "accuracy > 0.9"


def _events(session: Any) -> list[Any]:
    from sqlalchemy import select

    from shipyard.store.tables import AuditEvent

    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
