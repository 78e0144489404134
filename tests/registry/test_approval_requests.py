"""Approval requests and rejections, the viewer role refused by every registry write, and the
``expected`` state checks that refuse a change made from a stale view."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipyard import Client
from shipyard.audit import list_events
from shipyard.errors import InvalidInput, InvalidTransition, PermissionDenied
from shipyard.registry import Registry, Traffic
from shipyard.store import Store
from shipyard.store.tables import AuditEvent


@pytest.fixture
def alice(client_for: Callable[[str], Client], fitted_pipeline, training_data) -> Client:  # type: ignore[no-untyped-def]
    """``alice`` (a scientist) registered churn v1 and v2."""
    X, y, Xe, ye = training_data
    client = client_for("alice")
    for _ in range(2):
        client.register(
            fitted_pipeline, name="churn", X_train=X, y_train=y, X_eval=Xe, y_eval=ye, onnx=False
        )
    return client


def _events(store: Store, action: str | None = None) -> list[AuditEvent]:
    """Audit events, newest first."""
    with store.read() as session:
        return list(list_events(session, action=action, limit=1000))


def _actions(store: Store) -> list[str]:
    return [e.action for e in _events(store)]


def test_a_request_carries_the_comment_and_an_approval_closes_it(
    alice: Client, approver: Client, store: Store
) -> None:
    request = alice.registry.request_approval("churn", 2, actor="alice", comment="AUC +2 points")
    assert (request.status, request.requested_by, request.comment) == (
        "open",
        "alice",
        "AUC +2 points",
    )
    with pytest.raises(InvalidTransition, match="already has an open approval request"):
        alice.registry.request_approval("churn", 2, actor="alice", comment="again")
    approver.approve("churn", 2, reason="fine")
    (closed,) = alice.registry.approval_requests("churn", version=2)
    assert (closed.status, closed.decided_by, closed.reason) == ("approved", "bob", "fine")
    assert alice.registry.approval_requests(status="open") == []
    assert "version.approval_requested" in _actions(store)
    with pytest.raises(InvalidTransition, match="already approved"):
        alice.registry.request_approval("churn", 2, actor="alice")


def test_a_rejection_needs_a_reason_and_another_approver(
    alice: Client, approver: Client, client_for: Callable[[str], Client], store: Store
) -> None:
    registry = alice.registry
    registry.request_approval("churn", 1, actor="alice", comment="please")
    with pytest.raises(InvalidInput, match="reason"):
        registry.reject("churn", 1, actor="bob", reason="  ")
    with pytest.raises(PermissionDenied, match="only users with the approver role"):
        registry.reject("churn", 1, actor="carol", reason="no")
    client_for("admin").users.set_role("alice", "approver", actor="admin")
    with pytest.raises(PermissionDenied, match="four eyes"):
        registry.reject("churn", 1, actor="alice", reason="mine")
    rejected = registry.reject("churn", 1, actor="bob", reason="Fairness gap <b>age</b>")
    assert (rejected.status, rejected.decided_by, rejected.requested_by) == (
        "rejected",
        "bob",
        "alice",
    )
    assert registry.approval_requests(status="open") == []
    (event,) = _events(store, "version.rejected")
    assert event.reason == "Fairness gap <b>age</b>"
    assert event.details["request"] == rejected.id


def test_a_rejection_nobody_asked_for_is_kept_and_not_repeated(
    alice: Client, approver: Client
) -> None:
    registry = alice.registry
    first = registry.reject("churn", 2, actor="bob", reason="not better")
    assert (first.status, first.requested_by) == ("rejected", "")
    with pytest.raises(InvalidTransition, match="already rejected by bob"):
        registry.reject("churn", 2, actor="bob", reason="not better")
    registry.request_approval("churn", 2, actor="alice", comment="retrained data")
    assert registry.reject("churn", 2, actor="bob", reason="still not").requested_by == "alice"


def test_archived_versions_cannot_be_requested(alice: Client) -> None:
    alice.registry.archive("churn", 1, actor="alice")
    with pytest.raises(InvalidTransition, match="archived"):
        alice.registry.request_approval("churn", 1, actor="alice")


def test_a_viewer_changes_nothing_in_the_registry(
    alice: Client, client_for: Callable[[str], Client], store: Store
) -> None:
    client_for("admin").users.set_role("vera", "viewer", actor="admin")
    registry, before = Registry(store), len(_actions(store))
    with pytest.raises(PermissionDenied, match="viewer role"):
        registry.request_approval("churn", 1, actor="vera", comment="hi")
    with pytest.raises(PermissionDenied, match="viewer role"):
        registry.promote("churn", 1, actor="vera", to="staging")
    with pytest.raises(PermissionDenied, match="viewer role"):
        registry.set_tags("churn", {"a": 1}, actor="vera", version=1)
    with pytest.raises(PermissionDenied, match="viewer role"):
        Traffic(store).clear("churn", actor="vera")
    assert len(_actions(store)) == before
    assert registry.aliases("churn") == {}


def test_a_stale_alias_refuses_promote_and_rollback(alice: Client, approver: Client) -> None:
    registry = alice.registry
    registry.promote("churn", 1, actor="alice", to="staging", expected_version=0)
    with pytest.raises(InvalidTransition, match="churn@staging changed meanwhile: it is v1"):
        registry.promote("churn", 2, actor="alice", to="staging", expected_version=0)
    registry.promote("churn", 2, actor="alice", to="staging", expected_version=1)
    with pytest.raises(InvalidTransition, match="it is v2 now, not v1"):
        registry.rollback("churn", actor="alice", alias="staging", expected_version=1)
    registry.rollback("churn", actor="alice", alias="staging", expected_version=2)
    assert registry.aliases("churn") == {"staging": 1}


def test_a_stale_policy_refuses_traffic_changes(alice: Client, approver: Client) -> None:
    for version in (1, 2):
        approver.approve("churn", version, reason="ok")
    alice.promote("churn", 1)
    traffic = alice.traffic
    policy = traffic.canary("churn", 2, 10, actor="alice", expected_policy=0)
    with pytest.raises(InvalidTransition, match=rf"policy #{policy.id} \(canary"):
        traffic.canary("churn", 2, 20, actor="alice", expected_policy=0)
    with pytest.raises(InvalidTransition, match="changed meanwhile"):
        traffic.split("churn", {None: 50, 2: 50}, actor="alice", expected_policy=0)
    traffic.clear("churn", actor="alice", expected_policy=policy.id)
    with pytest.raises(InvalidTransition, match="no policy is in force now"):
        traffic.clear("churn", actor="alice", expected_policy=policy.id)
    with pytest.raises(InvalidTransition, match="changed meanwhile"):
        traffic.rollback("churn", actor="alice", expected_policy=0, expected_version=2)
    assert alice.registry.aliases("churn") == {"production": 1}
