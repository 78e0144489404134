"""Registry: numbering, aliases, stages, four eyes, rollback, tamper refusal, search."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from shipyard import Client
from shipyard.errors import (
    AlreadyExists,
    ApprovalRequired,
    IntegrityError,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PermissionDenied,
)
from shipyard.store import Store


@pytest.fixture
def store(store_everywhere: Store) -> Store:
    """These tests run with the artifacts on a local folder, SeaweedFS and moto."""
    return store_everywhere


@pytest.fixture
def alice(client_for: Callable[[str], Client]) -> Client:
    return client_for("alice")


@pytest.fixture
def three_versions(alice: Client, fitted_pipeline, training_data) -> Client:  # type: ignore[no-untyped-def]
    X, y, Xe, ye = training_data
    for _ in range(3):
        alice.register(
            fitted_pipeline, name="churn", X_train=X, y_train=y, X_eval=Xe, y_eval=ye, onnx=False
        )
    return alice


def test_versions_are_numbered_and_immutable(three_versions: Client) -> None:
    infos = three_versions.registry.versions("churn")
    assert [i.version.version for i in infos] == [3, 2, 1]
    assert all(i.stage == "candidate" and i.version.author == "alice" for i in infos)
    digests = {i.version.digest for i in infos}
    assert len(digests) == 3  # manifest carries the version: every archive differs


def test_four_eyes(three_versions: Client, approver: Client, client_for) -> None:  # type: ignore[no-untyped-def]
    alice = three_versions
    with pytest.raises(ApprovalRequired, match="shipyard approve churn 1"):
        alice.promote("churn", 1)
    with pytest.raises(PermissionDenied, match="only users with the approver role"):
        client_for("carol").approve("churn", 1, reason="looks fine")
    # an approver who is the author cannot approve their own version
    client_for("admin").users.set_role("alice", "approver", actor="admin")
    with pytest.raises(PermissionDenied, match=r"four\s+eyes"):
        alice.approve("churn", 1, reason="mine")
    with pytest.raises(InvalidInput, match="reason"):
        approver.approve("churn", 1, reason="  ")
    approver.approve("churn", 1, reason="AUC ok")
    with pytest.raises(AlreadyExists):
        approver.approve("churn", 1, reason="again")
    change = alice.promote("churn", 1)
    assert change.previous_version is None
    assert alice.registry.aliases("churn") == {"production": 1}
    assert alice.registry.stage("churn", 1) == "production"
    with pytest.raises(InvalidTransition, match="already production"):
        alice.promote("churn", 1)


def test_staging_and_custom_aliases_need_no_approval(three_versions: Client) -> None:
    alice = three_versions
    alice.promote("churn", 2, to="staging")
    alice.promote("churn", 3, to="challenger")
    assert alice.registry.aliases("churn") == {"staging": 2, "challenger": 3}
    assert alice.registry.stage("churn", 2) == "staging"
    assert alice.load("churn@challenger").version == 3
    with pytest.raises(InvalidInput, match="Invalid alias"):
        alice.promote("churn", 2, to="bad alias!")


def test_rollback_walks_back_through_production_history(
    three_versions: Client, approver: Client
) -> None:
    alice = three_versions
    for v in (1, 2, 3):
        approver.approve("churn", v, reason="ok")
    with pytest.raises(InvalidTransition, match="no production version"):
        alice.rollback("churn")
    alice.promote("churn", 1)
    with pytest.raises(InvalidTransition, match="no earlier version"):
        alice.rollback("churn")
    alice.promote("churn", 2)
    alice.promote("churn", 3)
    assert alice.registry.stage("churn", 1) == "archived"
    assert alice.rollback("churn").version == 2
    assert alice.rollback("churn").version == 1
    assert alice.registry.aliases("churn")["production"] == 1
    assert alice.load("churn@production").version == 1


def test_archive_blocks_promotion_and_aliased_versions(
    three_versions: Client, approver: Client
) -> None:
    alice = three_versions
    alice.promote("churn", 2, to="staging")
    with pytest.raises(InvalidTransition, match="still staging"):
        alice.registry.archive("churn", 2, actor="alice")
    alice.registry.archive("churn", 3, actor="alice")
    assert alice.registry.stage("churn", 3) == "archived"
    approver.approve("churn", 3, reason="ok")
    with pytest.raises(InvalidTransition, match="archived"):
        alice.promote("churn", 3)


def test_unknown_model_and_version(three_versions: Client) -> None:
    alice = three_versions
    with pytest.raises(NotFound, match="no model 'nope'"):
        alice.load("nope@production")
    with pytest.raises(NotFound, match="versions are 1 to 3"):
        alice.load("churn", version=9)
    with pytest.raises(NotFound, match="no 'production' version"):
        alice.load("churn@production")
    with pytest.raises(InvalidInput):
        alice.load("churn:zero")


def test_a_mistyped_model_name_gets_the_close_names(three_versions: Client) -> None:
    alice = three_versions
    with pytest.raises(NotFound, match=r"There is no model 'chrun'\. Did you mean 'churn'\?"):
        alice.load("chrun@production")
    for refused in (  # reads and writes raise from the registry, so CLI and API say it too
        lambda: alice.registry.versions("Churn"),
        lambda: alice.promote("chur", 1, to="staging"),
        lambda: alice.rollback("churns"),
    ):
        with pytest.raises(NotFound, match="Did you mean 'churn'"):
            refused()
    with pytest.raises(NotFound, match="'shipyard models' lists the registered ones") as info:
        alice.load("fraud@production")  # nothing close: where to look instead
    assert "Did you mean" not in info.value.message


def test_load_verifies_and_predicts(three_versions: Client, fitted_pipeline, training_data) -> None:  # type: ignore[no-untyped-def]
    _, _, Xe, _ = training_data
    model = three_versions.load("churn:2")
    assert model.version == 2
    np.testing.assert_array_equal(model.predict(Xe), fitted_pipeline.predict(Xe))
    assert three_versions.load("churn", version=2) is model  # cached by digest


def test_tampered_archive_is_refused_before_unpickling(
    three_versions: Client, store: Store
) -> None:
    mv = three_versions.registry.get_version("churn", 1)
    data = bytearray(store.artifacts.get(mv.archive_key))
    data[len(data) // 2] ^= 0xFF
    store.artifacts.put(mv.archive_key, bytes(data))
    fresh = Client(three_versions.settings, store=store).open()  # no cache
    with pytest.raises(IntegrityError, match="does not match the digest"):
        fresh.load("churn", version=1)


def test_archive_swapped_for_another_valid_archive_is_refused(
    three_versions: Client, store: Store
) -> None:
    v1 = three_versions.registry.get_version("churn", 1)
    v2 = three_versions.registry.get_version("churn", 2)
    store.artifacts.put(v1.archive_key, store.artifacts.get(v2.archive_key))
    fresh = Client(three_versions.settings, store=store).open()
    with pytest.raises(IntegrityError):
        fresh.load("churn", version=1)


def test_search_and_tags(three_versions: Client) -> None:
    alice = three_versions
    alice.register(
        __import__("sklearn.dummy", fromlist=["x"]).DummyClassifier().fit([[0], [1]], [0, 1]),
        name="fraud-detector",
        X_train=np.array([[0.0], [1.0]]),
        onnx=False,
    )
    alice.registry.set_tags("churn", {"team": "growth"}, actor="alice")
    alice.registry.set_tags("fraud-detector", {"team": "risk"}, actor="alice")
    assert [m.name for m in alice.registry.list_models()] == ["churn", "fraud-detector"]
    assert [m.name for m in alice.registry.list_models(search="FRAUD")] == ["fraud-detector"]
    assert [m.name for m in alice.registry.list_models(tag="team=growth")] == ["churn"]
    assert [m.name for m in alice.registry.list_models(tag="team")] == ["churn", "fraud-detector"]
    alice.registry.set_tags("churn", {"team": None}, actor="alice")
    assert alice.registry.get_model("churn").tags == {}
