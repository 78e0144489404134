"""Model groups in the registry: defined, checked, listed, deleted, audited."""

from __future__ import annotations

import pytest

from gates_off import NO_GATES
from group_models import register_group_models
from shipyard import Client
from shipyard.audit import list_events
from shipyard.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from shipyard.registry import Groups, Registry
from shipyard.store import Store


@pytest.fixture
def groups(store: Store, approver: Client, fitted_pipeline, training_data):  # type: ignore[no-untyped-def]
    registry = Registry(store, NO_GATES)
    register_group_models(registry, approver, fitted_pipeline, training_data)
    return Groups(store, registry)


def test_a_group_is_defined_listed_redefined_and_deleted(groups: Groups, store: Store) -> None:
    chain = groups.create(
        "retention", ["churn@production", "value@production"], "chain", actor="alice"
    )
    assert chain.revision == 1 and chain.describe() == (
        "chain of churn@production -> value@production"
    )
    vote = groups.create(
        "consensus",
        ["churn@production", "churn_tree@production"],
        "weighted",
        weights=[3, 1],
        actor="alice",
    )
    assert vote.weights == (0.75, 0.25)
    assert [g.name for g in groups.list()] == ["consensus", "retention"]
    with pytest.raises(AlreadyExists, match="--replace"):
        groups.create("retention", ["churn@production", "value@production"], "chain", actor="a")
    again = groups.create(
        "retention",
        ["churn@production", "value@production"],
        "chain",
        actor="alice",
        replace=True,
    )
    assert again.revision == 2
    marker = groups.marker()
    groups.delete("retention", actor="alice")
    assert groups.marker() != marker
    assert [g.name for g in groups.list()] == ["consensus"]
    with pytest.raises(NotFound):
        groups.get("retention")
    with store.read() as session:
        events = reversed(list_events(session, subject="group:retention"))
        actions = [e.action for e in events]
    assert actions == ["group.created", "group.created", "group.deleted"]


@pytest.mark.parametrize(
    ("members", "combine", "weights", "message"),
    [
        (["churn@production"], "median", None, "Unknown combine 'median'"),
        (["churn"], "mean", None, "must be MODEL@ALIAS"),
        (["churn@production", "churn_tree@production"], "weighted", None, "needs --weights"),
        (["churn@production", "churn_tree@production"], "weighted", [1.0], "2 members"),
        (["churn@production", "churn_tree@production"], "weighted", [1.0, -1.0], "positive"),
        (["churn@production", "churn_tree@production"], "mean", [1.0, 1.0], "not mean"),
        (["churn@production", "value@production"], "mean", None, "all be classifiers"),
        (["value@production", "churn@production"], "chain", None, "cannot follow value"),
        (["churn@production", "churn_tree@production"], "chain", None, "churn_proba_churn"),
        (["value@production"], "vote", None, "classifiers' labels"),
        (["churn@staging", "value@production"], "chain", None, "churn@staging cannot be"),
        (["nobody@production"], "mean", None, "nobody@production cannot be"),
        (["churn@production"], "chain", None, "at least two"),
        (["churn@production", "churn@production"], "mean", None, "once"),
    ],
)
def test_bad_groups_are_refused_with_one_sentence(
    groups: Groups, members: list[str], combine: str, weights: list[float] | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        groups.create("g", members, combine, weights=weights, actor="alice")
    assert groups.list() == []


def test_a_group_cannot_take_a_model_name_and_viewers_cannot_define_one(
    groups: Groups,
    client_for,  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(AlreadyExists, match="registered model"):
        groups.create("value", ["churn@production", "churn_tree@production"], "vote", actor="a")
    client_for("admin").users.set_role("vic", "viewer", actor="admin")
    with pytest.raises(PermissionDenied, match="viewer"):
        groups.create("g", ["churn@production", "churn_tree@production"], "vote", actor="vic")
