"""The risk register: add, list, close, audited; open high risks block an approval unless the
approver acknowledges each; written model card sections."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from shipyard import Client
from shipyard.audit import list_events
from shipyard.config import ProjectConfig
from shipyard.errors import (
    InvalidInput,
    InvalidTransition,
    NotFound,
    PermissionDenied,
)
from shipyard.registry import CardNotes, Registry, Risks, parse_card_markdown
from shipyard.store import Store, tables

NO_GATES = ProjectConfig.model_validate({"gates": {"require": False}})


@pytest.fixture
def two_versions(client_for: Callable[[str], Client], fitted_pipeline, training_data) -> Client:  # type: ignore[no-untyped-def]
    alice = client_for("alice")
    X, y, Xe, ye = training_data
    for _ in range(2):
        alice.register(
            fitted_pipeline, name="churn", X_train=X, y_train=y, X_eval=Xe, y_eval=ye, onnx=False
        )
    return alice


def _events(store: Store, action: str) -> list[tables.AuditEvent]:
    with store.read() as session:
        return list(list_events(session, action=action))


def test_add_list_close_are_audited(store: Store, two_versions: Client, approver: Client) -> None:
    risks = Risks(store)
    wide = risks.add(
        "churn", title="Trained before the price change", severity="High", owner="carol",
        mitigation="Retrain in Q3", actor="alice",
    )  # fmt: skip
    v2 = risks.add("churn", title="Unstable on new plans", severity="low", owner="dan",
                   version=2, actor="alice")  # fmt: skip
    assert (wide.severity, wide.version, wide.status, wide.is_open) == ("high", None, "open", True)
    assert wide.scope == "all versions" and v2.scope == "v2"
    assert [r.id for r in risks.list("churn")] == [wide.id, v2.id]
    assert [r.id for r in risks.list("churn", version=1)] == [wide.id]  # v2's is not v1's
    assert [r.id for r in risks.list("churn", version=2)] == [wide.id, v2.id]

    closed = risks.close("churn", v2.id, actor="alice", resolution="  plan added to training ")
    assert (closed.status, closed.closed_by, closed.resolution) == (
        "closed", "alice", "plan added to training",
    )  # fmt: skip
    assert closed.closed_at is not None
    assert [r.id for r in risks.list("churn")] == [wide.id]
    assert [r.id for r in risks.list("churn", include_closed=True)] == [wide.id, v2.id]

    added = _events(store, "risk.added")
    assert [e.subject for e in added] == ["model:churn/2", "model:churn"]  # newest first
    assert added[1].details["severity"] == "high" and added[1].details["owner"] == "carol"
    (closing,) = _events(store, "risk.closed")
    assert closing.actor == "alice" and closing.reason == "plan added to training"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"severity": "critical"}, InvalidInput, "Severity 'critical' is not one of low, medium"),
        ({"title": "   "}, InvalidInput, "needs a title"),
        ({"owner": ""}, InvalidInput, "needs an owner"),
        ({"name": "chrun"}, NotFound, "Did you mean 'churn'"),
        ({"version": 9}, NotFound, "no version 9; its versions are 1 to 2"),
    ],
)
def test_bad_risks_are_refused_and_nothing_is_stored(
    store: Store, two_versions: Client, kwargs: dict, error: type, message: str
) -> None:
    args = {"name": "churn", "title": "Leaky feature", "severity": "high", "owner": "carol"}
    args.update(kwargs)
    name = args.pop("name")
    with pytest.raises(error, match=message):
        Risks(store).add(name, actor="alice", **args)
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(tables.Risk)) == 0
    assert _events(store, "risk.added") == []


def test_closing_unknown_closed_or_high_risks(
    store: Store, two_versions: Client, approver: Client
) -> None:
    risks = Risks(store)
    high = risks.add("churn", title="PII in features", severity="high", owner="carol",
                     actor="alice")  # fmt: skip
    with pytest.raises(NotFound, match="Model 'churn' has no risk #99"):
        risks.close("churn", 99, actor="bob", resolution="gone")
    with pytest.raises(InvalidInput, match="needs a reason"):
        risks.close("churn", high.id, actor="bob", resolution=" ")
    with pytest.raises(PermissionDenied, match="only approvers"):
        risks.close("churn", high.id, actor="alice", resolution="I say so")
    risks.close("churn", high.id, actor="bob", resolution="Dropped the column")
    with pytest.raises(InvalidTransition, match=r"already closed \(by bob: 'Dropped the column'\)"):
        risks.close("churn", high.id, actor="bob", resolution="again")
    assert len(_events(store, "risk.closed")) == 1


def test_open_high_risks_block_approval_until_acknowledged(
    store: Store, two_versions: Client, approver: Client, client_for: Callable[[str], Client]
) -> None:
    risks = Risks(store)
    registry = Registry(store, NO_GATES)
    high = risks.add("churn", title="Label leakage suspected", severity="high", owner="carol",
                     actor="alice")  # fmt: skip
    other = risks.add("churn", title="Small eval set", severity="high", owner="dan", version=1,
                      actor="alice")  # fmt: skip
    medium = risks.add("churn", title="Drift-prone feature", severity="medium", owner="carol",
                       actor="alice")  # fmt: skip

    with pytest.raises(InvalidTransition) as refused:
        registry.approve("churn", 2, actor="bob", reason="AUC ok")
    message = str(refused.value)
    assert f"#{high.id} 'Label leakage suspected' (owner carol)" in message
    assert f"#{other.id}" not in message  # v1's risk does not concern v2
    assert f'shipyard approve churn 2 --reason "..." --ack-risk {high.id}' in message

    # a non-approver is refused whatever they acknowledge
    with pytest.raises(PermissionDenied, match="only users with the approver role"):
        registry.approve("churn", 2, actor="carol", reason="ok", acknowledge=[high.id])
    # an id that is not an open risk of the version
    with pytest.raises(NotFound, match=f"Risk #{other.id} is not an open risk of churn v2"):
        registry.approve("churn", 2, actor="bob", reason="ok", acknowledge=[high.id, other.id])
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(tables.Approval)) == 0
        assert session.scalar(select(func.count()).select_from(tables.RiskAcknowledgement)) == 0

    approval = registry.approve(
        "churn", 2, actor="bob", reason="Leakage checked by hand", acknowledge=[high.id, medium.id]
    )
    assert approval.approver == "bob"
    with store.read() as session:
        acks = session.scalars(select(tables.RiskAcknowledgement)).all()
        assert sorted((a.risk_id, a.version, a.approver) for a in acks) == [
            (high.id, 2, "bob"), (medium.id, 2, "bob"),
        ]  # fmt: skip
    (event,) = _events(store, "version.approved")
    assert event.details["acknowledged_risks"] == sorted([high.id, medium.id])

    # v1 has both high risks; closing one leaves the other to acknowledge
    risks.close("churn", high.id, actor="bob", resolution="leakage ruled out")
    with pytest.raises(InvalidTransition, match=f"#{other.id} 'Small eval set' \\(owner dan\\)"):
        registry.approve("churn", 1, actor="bob", reason="ok")
    registry.approve("churn", 1, actor="bob", reason="ok", acknowledge=[other.id])
    registry.promote("churn", 1, actor="alice")


def test_approval_without_risks_records_no_acknowledgement(
    store: Store, two_versions: Client, approver: Client
) -> None:
    Risks(store).add("churn", title="Minor", severity="low", owner="carol", actor="alice")
    Registry(store, NO_GATES).approve("churn", 1, actor="bob", reason="fine")
    (event,) = _events(store, "version.approved")
    assert event.details["acknowledged_risks"] == []


def test_card_notes_are_written_per_version_and_audited(store: Store, two_versions: Client) -> None:
    notes = CardNotes(store)
    notes.set("churn", 1, "Intended use", "Retention offers for existing customers.", actor="alice")
    written = notes.set_many(
        "churn", 1, {"caveats": "US only.", "ethical_considerations": "Age is a feature."},
        actor="carol",
    )  # fmt: skip
    assert set(written) == {"caveats", "ethical_considerations"}
    got = notes.get("churn", 1)
    assert list(got) == ["intended_use", "ethical_considerations", "caveats"]  # card order
    assert got["caveats"].updated_by == "carol" and got["intended_use"].updated_by == "alice"
    assert notes.get("churn", 2) == {}
    notes.set("churn", 1, "caveats", "US and Canada.", actor="alice")
    assert notes.get("churn", 1)["caveats"].text == "US and Canada."
    edits = _events(store, "card.edited")
    assert edits[0].details == {"sections": {"caveats": "US and Canada."}}

    with pytest.raises(InvalidInput, match="'summary' is not a model card section; write one"):
        notes.set_many("churn", 1, {"caveats": "x", "summary": "y"}, actor="alice")
    with pytest.raises(InvalidInput, match="is empty"):
        notes.set("churn", 1, "caveats", "  ", actor="alice")
    with pytest.raises(NotFound, match="no version 7"):
        notes.set("churn", 7, "caveats", "x", actor="alice")
    assert notes.get("churn", 1)["caveats"].text == "US and Canada."  # nothing half-written
    assert len(_events(store, "card.edited")) == 3


def test_card_markdown_headings_map_to_sections() -> None:
    text = "# Churn v3\nintro\n## Intended use\nOffers.\n\nMore.\n## Caveats ##\nUS only.\n"
    assert parse_card_markdown(text) == {"intended_use": "Offers.\n\nMore.", "caveats": "US only."}
    with pytest.raises(InvalidInput, match=r"heading\(s\) 'Summary' .* Intended use"):
        parse_card_markdown("## Summary\nx\n## Caveats\ny", source="notes.md")
    with pytest.raises(InvalidInput, match="no '## Section' headings"):
        parse_card_markdown("just text")
    with pytest.raises(InvalidInput, match="two '## caveats' sections"):
        parse_card_markdown("## Caveats\na\n## caveats\nb")
