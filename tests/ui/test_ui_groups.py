"""Model groups in the web UI: the catalogue's groups section, a page per group with each
member's alias and the version it points at now, whether the group can answer (and why not,
in plain words), the JSON twins under /api/, and unknown or hostile names answered 404."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from review_support import VERA, ui_browsers

from shipyard import Client
from shipyard.packaging import prepare_archive
from shipyard.registry import Groups
from shipyard.store import Store, tables
from shipyard.store.tables import utcnow

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)


@pytest.fixture
def vera(store: Store, ui_groups: Groups) -> Iterator[httpx.Client]:
    """A client of the UI over ``ui_groups``, logged in as the viewer vera."""
    with ui_browsers(store) as login:
        yield login(VERA)


def test_the_catalogue_lists_the_groups_and_links_their_pages(vera: httpx.Client) -> None:
    page = vera.get("/ui/")
    searched = vera.get("/ui/", params={"q": "valuable"})
    listed = vera.get("/api/groups")
    assert page.status_code == 200
    assert "Model groups" in page.text
    assert 'href="/ui/groups/retention"' in page.text and 'href="/ui/groups/consensus"' in page.text
    assert (
        "Keep &lt;b&gt;valuable&lt;/b&gt; customers" in page.text and "<b>valuable" not in page.text
    )
    assert "churn@production → value@production" in page.text
    assert "/ui/groups/retention" in searched.text and "/ui/groups/consensus" not in searched.text
    assert [(g["name"], g["combine"], g["members"]) for g in listed.json()] == [
        ("consensus", "weighted", ["churn@production", "churn_tree@production"]),
        ("retention", "chain", ["churn@production", "value@production"]),
    ]


def test_a_group_page_shows_its_rule_weights_members_and_versions(vera: httpx.Client) -> None:
    page = vera.get("/ui/groups/consensus")
    api = vera.get("/api/groups/consensus").json()
    assert page.status_code == 200
    text = page.text
    assert 'id="group-status">can answer<' in text
    assert "weighted mean" in text and "0.750" in text and "0.250" in text
    assert 'href="/ui/models/churn/versions/1"' in text
    assert 'href="/ui/models/churn_tree/versions/1"' in text
    assert api["can_answer"] is True and api["problem"] is None
    assert (api["combine"], api["weights"], api["revision"]) == ("weighted", [0.75, 0.25], 1)
    rows = [(m["model"], m["alias"], m["version"], m["weight"]) for m in api["members"]]
    assert rows == [("churn", "production", 1, 0.75), ("churn_tree", "production", 1, 0.25)]
    assert [m["problem"] for m in api["members"]] == [None, None]


def test_promoting_a_member_whose_schema_no_longer_fits_stops_the_group(  # type: ignore[no-untyped-def]
    vera: httpx.Client, ui_groups: Groups, approver: Client, fitted_pipeline, training_data
) -> None:
    before = vera.get("/api/groups/retention").json()
    # value v2 reads the request's columns only, none of churn's outputs
    X, y, _, _ = training_data
    registry = ui_groups.registry
    registry.register(
        prepare_archive(fitted_pipeline, X_train=X, y_train=y, onnx=False),
        name="value",
        actor="alice",
    )
    approver.approve("value", 2, reason="ok")
    registry.promote("value", 2, actor="alice")
    after = vera.get("/api/groups/retention").json()
    page = vera.get("/ui/groups/retention")
    assert before["can_answer"] is True
    assert after["can_answer"] is False
    assert after["problem"].startswith("value cannot follow churn in a chain")
    assert [(m["model"], m["version"], bool(m["problem"])) for m in after["members"]] == [
        ("churn", 1, False),
        ("value", 2, True),
    ]
    assert 'id="group-status">cannot answer<' in page.text
    assert "value cannot follow churn in a chain" in page.text
    assert 'href="/ui/models/value/versions/2"' in page.text


def _define_unchecked(store: Store, name: str, members: list[dict[str, Any]]) -> None:
    """A group row as ``Groups.create`` writes it, without its check: no API takes an alias
    away from a model, so this is how a member whose alias points nowhere is made."""
    with store.write() as session:
        session.add(
            tables.ModelGroup(
                name=name,
                revision=1,
                combine="mean",
                members=members,
                weights=None,
                deleted=False,
                created_at=utcnow(),
                created_by="alice",
                description="",
            )
        )


def test_a_member_pointing_nowhere_or_a_missing_archive_is_said_in_plain_words(
    vera: httpx.Client, store: Store, ui_groups: Groups
) -> None:
    _define_unchecked(
        store,
        "stale",
        [{"model": "churn", "alias": "staging"}, {"model": "churn_tree", "alias": "production"}],
    )
    stale = vera.get("/api/groups/stale").json()
    page = vera.get("/ui/groups/stale")
    tree = ui_groups.registry.get_version("churn_tree", 1)
    store.artifacts.delete(tree.archive_key)
    missing = vera.get("/api/groups/consensus").json()
    assert 'id="group-status">cannot answer<' in page.text
    assert stale["can_answer"] is False
    assert stale["problem"].startswith("churn@staging points at no version:")
    assert [m["version"] for m in stale["members"]] == [None, 1]
    assert page.status_code == 200 and "churn@staging points at no version" in page.text
    assert missing["can_answer"] is False
    assert missing["problem"].startswith("The archive of churn_tree v1 cannot be read")
    assert missing["members"][1]["problem"] == missing["problem"]


#: Names no group has: unknown, a model's, HTML, a NUL byte, encoded dots and backslashes,
#: too long (``..`` itself: httpx would resolve it; tests/security sends it raw).
NOT_GROUPS = ["nope", "churn", "<b>x</b>", "churn%00", "%2e%2e", "..%5c..%5cetc", "a" * 300]


def test_unknown_and_hostile_group_names_are_404(vera: httpx.Client) -> None:
    for name in NOT_GROUPS:
        page = vera.get(f"/ui/groups/{name}")
        assert page.status_code == 404, (name, page.text)
        assert "Not found" in page.text and "<b>x</b>" not in page.text
        api = vera.get(f"/api/groups/{name}")
        assert api.status_code == 404 and set(api.json()) == {"error"}, name
    assert vera.get("/api/groups/nope").json() == {
        "error": "There is no model group 'nope'; see shipyard group list, or define it "
        "with shipyard group create."
    }


def test_a_group_needs_a_login_and_its_404_is_documented(store: Store, ui_groups: Groups) -> None:
    with ui_browsers(store) as login:
        anonymous = login(None)
        assert anonymous.get("/api/groups/retention").status_code == 401
        redirect = anonymous.get("/ui/groups/retention")
        assert redirect.status_code == 303 and "/ui/login?next=" in redirect.headers["location"]
        schema = anonymous.get("/api/openapi.json").json()
    one = schema["paths"]["/api/groups/{name}"]["get"]["responses"]
    assert {"200", "401", "403", "404"} <= set(one)
    assert one["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ApiError")
    assert "/api/groups" in schema["paths"]
