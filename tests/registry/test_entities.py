"""The registry hands out plain frozen entities (never ORM rows), and a cheap change marker."""

from __future__ import annotations

import dataclasses
import doctest
import importlib
from collections.abc import Callable

import pytest

from shipyard import Client
from shipyard.registry import AliasChange, Approval, ModelVersion, RegisteredModel, Traffic
from shipyard.store import tables


def test_every_registry_answer_is_an_entity_with_a_readable_repr(
    client_for: Callable[[str], Client], approver: Client, fitted_pipeline, training_data
) -> None:  # type: ignore[no-untyped-def]
    alice = client_for("alice")
    X, y, _, _ = training_data
    with alice.start_run(model="churn") as run:
        mv = run.register(fitted_pipeline, X_train=X, y_train=y, onnx=False)
    assert type(mv) is ModelVersion and not isinstance(mv, tables.Base)
    short = mv.digest[: len("sha256:") + 8]
    assert repr(mv) == (
        f"ModelVersion(model_name='churn', version=1, digest='{short}…', author='alice')"
    )
    assert mv.run_id == run.id and mv.archived_at is None and mv.size > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        mv.version = 2  # type: ignore[misc]

    approval = approver.approve("churn", 1, reason="AUC ok")
    assert type(approval) is Approval
    assert repr(approval) == "Approval(model_name='churn', version=1, approver='bob')"
    change = alice.promote("churn", 1, reason="first")
    assert type(change) is AliasChange
    assert (change.alias, change.version, change.previous_version, change.by) == (
        "production",
        1,
        None,
        "alice",
    )
    assert "action='set'" in repr(change)

    registry = alice.registry
    assert registry.resolve("churn@production") == mv
    assert registry.get_version("churn", 1) == mv
    assert registry.versions("churn")[0].version == mv
    assert registry.alias_history("churn") == [change]
    model = registry.get_model("churn")
    assert type(model) is RegisteredModel and model.created_by == "alice"
    assert registry.list_models() == [model]
    assert all(not isinstance(r, tables.Base) for r in alice.tracker.list_runs())


def test_the_change_marker_moves_with_aliases_and_traffic_policies(
    client_for: Callable[[str], Client], approver: Client, fitted_pipeline, training_data
) -> None:  # type: ignore[no-untyped-def]
    alice = client_for("alice")
    X, y, _, _ = training_data
    for _ in range(2):
        alice.register(fitted_pipeline, name="churn", X_train=X, y_train=y, onnx=False)
    registry = alice.registry
    start = registry.change_marker()
    hash(start)  # the pool compares and keeps it
    assert registry.models_with_alias("production") == []
    approver.approve("churn", 1, reason="ok")
    assert registry.change_marker() == start  # an approval moves nothing a server serves
    alice.promote("churn", 1)
    promoted = registry.change_marker()
    assert promoted != start
    assert registry.models_with_alias("production") == ["churn"]
    Traffic(alice.store).shadow("churn", 2, actor="alice")
    assert registry.change_marker() not in (start, promoted)


@pytest.mark.parametrize(
    "module",
    ["shipyard.registry._entities", "shipyard.tracking._entities", "shipyard.store._entity"],
)
def test_entity_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
