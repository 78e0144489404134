"""Traffic policies in the registry: validation, approval, audit, promote/rollback interplay."""

from __future__ import annotations

import pytest

from gates_off import NO_GATES
from shipyard import Client
from shipyard.audit import list_events
from shipyard.errors import ApprovalRequired, InvalidInput, InvalidTransition, NotFound
from shipyard.packaging import prepare_archive
from shipyard.registry import Registry, Traffic
from shipyard.store import Store


def _events(store: Store, prefix: str) -> list[tuple[str, dict, str]]:  # type: ignore[type-arg]
    with store.read() as session:
        events = reversed(list_events(session, limit=1000))
        return [
            (e.action, dict(e.details), e.reason) for e in events if e.action.startswith(prefix)
        ]


@pytest.fixture
def churn(store: Store, fitted_pipeline, training_data, approver: Client) -> Registry:  # type: ignore[no-untyped-def]
    """churn v1..v3 by alice; v1, v2 approved by bob; v1 production."""
    X, y, _, _ = training_data
    prepared = prepare_archive(fitted_pipeline, X_train=X, y_train=y, onnx=False)
    registry = Registry(store, NO_GATES)
    for _ in range(3):
        registry.register(prepared, name="churn", actor="alice")
    for v in (1, 2):
        approver.approve("churn", v, reason="ok")
    registry.promote("churn", 1, actor="alice")
    return registry


def test_canary_validation_and_audit(store: Store, churn: Registry) -> None:
    t = Traffic(store, NO_GATES)
    with pytest.raises(InvalidInput):
        t.canary("churn", 2, 0, actor="alice")
    with pytest.raises(InvalidInput):
        t.canary("churn", 2, 100, actor="alice")
    with pytest.raises(InvalidInput, match="header:<name>"):
        t.canary("churn", 2, 10, actor="alice", sticky="cookie:x")
    with pytest.raises(NotFound):
        t.canary("churn", 9, 10, actor="alice")
    with pytest.raises(ApprovalRequired):
        t.canary("churn", 3, 10, actor="alice")
    with pytest.raises(InvalidTransition, match="already"):
        t.canary("churn", 1, 10, actor="alice")
    assert t.current("churn") is None
    policy = t.canary("churn", 2, 10, actor="alice", sticky="header:X-User", reason="try")
    assert [(a.version, a.weight) for a in policy.arms] == [(None, 90.0), (2, 10.0)]
    assert policy.sticky == "header:x-user"
    assert t.current("churn") == policy
    events = _events(store, "traffic.")
    assert [e[0] for e in events] == ["traffic.canary"]
    assert events[0][1]["percent"] == 10.0 and events[0][2] == "try"


def test_split_shadow_clear_history(store: Store, churn: Registry) -> None:
    t = Traffic(store, NO_GATES)
    with pytest.raises(InvalidInput, match="sum to 90"):
        t.split("churn", {1: 40, 2: 50}, actor="alice")
    with pytest.raises(InvalidInput, match="same version"):
        t.split("churn", {None: 50, 1: 50}, actor="alice")
    with pytest.raises(ApprovalRequired):
        t.split("churn", {1: 50, 3: 50}, actor="alice")
    t.split("churn", {1: 33.3333333, 2: 66.6666667}, actor="alice")  # float rounding tolerated
    shadowed = t.shadow("churn", 3, actor="alice")  # no approval needed
    assert shadowed.kind == "split" and shadowed.shadow == 3 and len(shadowed.arms) == 2
    with pytest.raises(InvalidTransition):
        t.shadow("churn", 2, actor="alice")  # v2 answers already
    with pytest.raises(InvalidTransition, match="traffic policy"):
        churn.archive("churn", 3, actor="alice")
    t.clear("churn", actor="alice", reason="done")
    assert t.current("churn") is None
    with pytest.raises(InvalidTransition, match="no traffic policy"):
        t.clear("churn", actor="alice")
    assert [p.kind for p in t.history("churn")] == ["none", "split", "split"]


def test_promote_ends_canary_and_rollback_ends_it_first(store: Store, churn: Registry) -> None:
    t = Traffic(store, NO_GATES)
    t.canary("churn", 2, 20, actor="alice")
    with pytest.raises(InvalidTransition, match="canary in force"):
        churn.rollback("churn", actor="alice")
    outcome = t.rollback("churn", actor="alice", reason="bad canary")
    assert outcome.previous is not None and outcome.change is None
    assert t.current("churn") is None and churn.aliases("churn")["production"] == 1
    t.canary("churn", 2, 20, actor="alice")
    t.shadow("churn", 3, actor="alice")
    churn.promote("churn", 2, actor="alice")
    after = t.current("churn")
    assert after is not None and after.arms == () and after.shadow == 3  # shadow stays
    cleared = _events(store, "traffic.cleared")
    assert [e[1]["cause"] for e in cleared] == ["rollback", "promotion of v2"]
    t.clear("churn", actor="alice")
    assert t.rollback("churn", actor="alice").change is not None  # no policy: alias moves
    assert churn.aliases("churn")["production"] == 1


def test_canary_needs_production(store: Store, fitted_pipeline, training_data) -> None:  # type: ignore[no-untyped-def]
    X, y, _, _ = training_data
    Registry(store, NO_GATES).register(
        prepare_archive(fitted_pipeline, X_train=X, y_train=y, onnx=False),
        name="fresh",
        actor="alice",
    )
    with pytest.raises(InvalidTransition, match="no production version"):
        Traffic(store, NO_GATES).canary("fresh", 1, 10, actor="alice")
