"""The read models of the version page and the approvals inbox, over the registry: which
versions wait for a review, their evidence, and the archive read through its manifest."""

from __future__ import annotations

import pytest

from gates_off import NO_GATES
from shipyard.errors import IntegrityError
from shipyard.packaging import PreparedArchive, prepare_archive
from shipyard.registry import Gates, Registry, Risks
from shipyard.store import Store
from shipyard.views import approvals_view, version_view


@pytest.fixture(scope="module")
def prepared(fitted_pipeline, training_data) -> PreparedArchive:  # type: ignore[no-untyped-def]
    X, y, Xe, ye = training_data
    return prepare_archive(fitted_pipeline, X_train=X, y_train=y, X_eval=Xe, y_eval=ye, onnx=False)


@pytest.fixture
def registry(store: Store, prepared: PreparedArchive) -> Registry:
    """churn: v1 production, v2 and v3 newer, v4 archived; fraud: v1 (nothing in production),
    v2 approved. bob approves; alice registers."""
    from shipyard.auth import Users

    Users(store).set_role("bob", "approver", actor="admin")
    registry = Registry(store, NO_GATES)
    for _ in range(4):
        registry.register(prepared, name="churn", actor="alice")
    for _ in range(2):
        registry.register(prepared, name="fraud", actor="alice")
    registry.approve("churn", 1, actor="bob", reason="ok")
    registry.promote("churn", 1, actor="alice")
    registry.archive("churn", 4, actor="alice")
    registry.approve("fraud", 2, actor="bob", reason="ok")
    return registry


def test_the_inbox_lists_requests_then_unreviewed_candidates(
    store: Store, registry: Registry
) -> None:
    registry.request_approval("churn", 3, actor="alice", comment="new features")
    mv = registry.get_version("churn", 3)
    Gates(store).record("churn", 3, digest=mv.digest, passed=False, failed=["slices", "size"],
                        champion=1, data_source="eval", report={"gates": [{}, {}, {}]},
                        actor="alice")  # fmt: skip
    Gates(store).waive("churn", 3, "size", actor="bob", reason="fine")
    risks = Risks(store)
    risks.add("churn", title="every version", severity="low", owner="o", actor="alice")
    risks.add("churn", title="v2 only", severity="high", owner="o", actor="alice", version=2)
    inbox = approvals_view(store)
    (asked,) = inbox.requests
    assert (asked.model, asked.version, asked.request and asked.request.comment) == (
        "churn",
        3,
        "new features",
    )
    assert (asked.validated, asked.gates_passed, asked.gates_failed) == (True, False, ["slices"])
    assert (asked.waived, asked.gates_total, asked.production) == (["size"], 3, 1)
    assert [r.title for r in asked.open_risks] == ["every version"]
    roc = next(m for m in asked.metrics if m.metric == "roc_auc")
    assert roc.candidate == roc.production and roc.difference == 0
    # churn v2 is newer than production and nobody reviewed it; v4 is archived; fraud v1 has
    # no production to be compared with; fraud v2 is approved
    assert {(p.model, p.version) for p in inbox.unreviewed} == {("churn", 2), ("fraud", 1)}
    fraud = next(p for p in inbox.unreviewed if p.model == "fraud")
    assert fraud.production == 0 and all(m.production is None for m in fraud.metrics)
    registry.reject("churn", 2, actor="bob", reason="no")
    assert {(p.model, p.version) for p in approvals_view(store).unreviewed} == {("fraud", 1)}
    assert len(approvals_view(store, limit=1).unreviewed) == 1


def test_the_version_view_reads_the_manifest_only(store: Store, registry: Registry) -> None:
    view = version_view(store, "churn", 1, project=NO_GATES)
    manifest = registry.open_archive("churn", 1).manifest
    assert {m.path: m.sha256 for m in view.archive.members} == manifest.members
    assert registry.read_manifest("churn", 1) == manifest
    assert (view.stage, view.production, view.approvals[0].approver) == ("production", 1, "bob")
    assert view.gates is None and view.archive.error is None


def test_a_damaged_archive_is_reported_not_raised(store: Store, registry: Registry) -> None:
    mv = registry.get_version("churn", 2)
    store.artifacts.put(mv.archive_key, b"not a zip")
    with pytest.raises(IntegrityError, match="no readable manifest"):
        registry.read_manifest("churn", 2)
    view = version_view(store, "churn", 2)
    assert view.archive.members == [] and "manifest" in (view.archive.error or "")
