"""The approvals inbox and approving, rejecting and requesting a review through the UI and
its /api twin: four eyes through the page, required reasons, CSRF, viewers, escaping."""

from __future__ import annotations

import pytest
from review_support import (
    APRIL,
    SAM,
    VERA,
    actions,
    api_post,
    seed,
    ui_browsers,
)
from ui_support import post_form

from shipyard.auth import Tokens
from shipyard.packaging import PreparedArchive
from shipyard.registry import Registry, Risks
from shipyard.store import Store

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

V2 = "/ui/models/churn/versions/2"


@pytest.fixture
def registry(store: Store, prepared: PreparedArchive) -> Registry:
    return seed(store, prepared)


def test_the_inbox_shows_requests_with_their_evidence_escaped(
    store: Store, registry: Registry
) -> None:
    registry.request_approval("churn", 2, actor=SAM, comment="<script>alert(1)</script> AUC up")
    with ui_browsers(store) as login:
        client = login(APRIL)
        page = client.get("/ui/approvals")
        assert page.status_code == 200
        assert "&lt;script&gt;alert(1)&lt;/script&gt; AUC up" in page.text
        assert "<script>alert(1)" not in page.text
        assert f"{V2}/approve" in page.text and "production v1" in page.text
        inbox = client.get("/api/approvals").json()
    (item,) = inbox["requests"]
    assert (item["model"], item["version"], item["request"]["requested_by"]) == ("churn", 2, SAM)
    assert item["production"] == 1 and item["validated"] is False
    assert {m["metric"] for m in item["metrics"]} >= {"roc_auc"}
    assert inbox["unreviewed"] == []  # v2 has a request; v1 is production


def test_unreviewed_candidates_are_listed_until_someone_decides(
    store: Store, registry: Registry
) -> None:
    with ui_browsers(store) as login:
        client = login(VERA)
        inbox = client.get("/api/approvals").json()
        assert [(p["model"], p["version"]) for p in inbox["unreviewed"]] == [("churn", 2)]
        assert "Approve…" not in client.get("/ui/approvals").text  # a viewer only looks
        registry.reject("churn", 2, actor=APRIL, reason="no")
        assert client.get("/api/approvals").json()["unreviewed"] == []


def test_a_second_user_approves_through_the_page_and_it_is_audited(
    store: Store, registry: Registry
) -> None:
    registry.request_approval("churn", 2, actor=SAM, comment="please")
    with ui_browsers(store) as login:
        client = login(APRIL)
        form = client.get(f"{V2}/approve")
        assert form.status_code == 200
        assert "churn v2" in form.text and "please" in form.text
        done = post_form(client, f"{V2}/approve", {"reason": "AUC <up>"})
        assert done.status_code == 303
        assert done.headers["location"] == "/ui/models/churn?done=approved"
    assert [a.approver for a in registry.approvals("churn", 2)] == [APRIL]
    assert actions(store, "version.approved")[-1] == (APRIL, "model:churn/2")
    (request,) = registry.approval_requests("churn", version=2)
    assert (request.status, request.decided_by, request.reason) == ("approved", APRIL, "AUC <up>")
    with ui_browsers(store) as login:
        page = login(SAM).get(V2)
        assert "AUC &lt;up&gt;" in page.text


def test_the_author_cannot_approve_their_own_version_through_the_page(
    store: Store, registry: Registry, prepared: PreparedArchive
) -> None:
    v3 = registry.register(prepared, name="churn", actor=APRIL)
    url = f"/ui/models/churn/versions/{v3.version}/approve"
    with ui_browsers(store) as login:
        client = login(APRIL)
        assert "You are the author" in client.get(url).text
        refused = post_form(client, url, {"reason": "mine"})
        assert refused.status_code == 403
        assert "four eyes" in refused.text
    assert registry.approvals("churn", v3.version) == []
    assert actions(store, "version.approved") == [(APRIL, "model:churn/1")]


def test_refusals_change_nothing(store: Store, registry: Registry) -> None:
    with ui_browsers(store) as login:
        viewer = login(VERA)
        assert viewer.get(f"{V2}/approve").status_code == 403
        refused = post_form(viewer, f"{V2}/approve", {"reason": "ok"})
        assert refused.status_code == 403 and "&#39;viewer&#39;" in refused.text
        approver = login(APRIL)
        approver.get("/ui/approvals")
        no_csrf = approver.post(f"{V2}/approve", data={"reason": "ok"})
        assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
        empty = post_form(approver, f"{V2}/approve", {"reason": "   "})
        assert empty.status_code == 400 and "reason" in empty.text
        empty = post_form(approver, f"{V2}/reject", {"reason": ""})
        assert empty.status_code == 400
        assert login(APRIL).get("/ui/models/nope/versions/1/approve").status_code == 404
        assert login(APRIL).get("/ui/models/churn/versions/9/reject").status_code == 404
    assert registry.approvals("churn", 2) == []
    assert registry.approval_requests("churn") == []


def test_reject_and_request_approval_through_the_pages(store: Store, registry: Registry) -> None:
    with ui_browsers(store) as login:
        sam = login(SAM)
        assert sam.get(f"{V2}/request-approval").status_code == 200
        asked = post_form(sam, f"{V2}/request-approval", {"comment": "new data"})
        assert asked.status_code == 303
        assert asked.headers["location"] == f"{V2}?done=approval-requested"
        assert "Approval requested" in sam.get(asked.headers["location"]).text
        again = post_form(sam, f"{V2}/request-approval", {"comment": "new data"})
        assert again.status_code == 409
        april = login(APRIL)
        rejected = post_form(april, f"{V2}/reject", {"reason": "Gap on <age>"})
        assert rejected.headers["location"] == "/ui/models/churn?done=rejected"
        twice = post_form(april, f"{V2}/reject", {"reason": "Gap on <age>"})
        assert twice.status_code == 409
    (request,) = registry.approval_requests("churn", version=2)
    assert (request.status, request.comment, request.reason) == (
        "rejected",
        "new data",
        "Gap on <age>",
    )
    assert actions(store, "version.rejected") == [(APRIL, "model:churn/2")]
    assert actions(store, "version.approval_requested") == [(SAM, "model:churn/2")]


def test_the_api_approves_and_rejects_with_the_same_rules(store: Store, registry: Registry) -> None:
    secret, _ = Tokens(store).create(role="admin", name="ci", actor="admin")
    with ui_browsers(store) as login:
        april = login(APRIL)
        empty = api_post(april, "/api/models/churn/versions/2/approve", {"reason": ""})
        assert empty.status_code == 400 and "reason" in empty.json()["error"]
        ok = api_post(april, "/api/models/churn/versions/2/approve", {"reason": "good"})
        assert ok.status_code == 200
        assert (ok.json()["approver"], ok.json()["version"]) == (APRIL, 2)
        twice = api_post(april, "/api/models/churn/versions/2/approve", {"reason": "good"})
        assert twice.status_code == 409
        no_csrf = april.post("/api/models/churn/versions/2/reject", json={"reason": "x"})
        assert no_csrf.status_code == 403
        sam = login(SAM)
        refused = api_post(sam, "/api/models/churn/versions/2/reject", {"reason": "x"})
        assert refused.status_code == 403
        token = login(None)
        rejected = token.post(
            "/api/models/churn/versions/2/reject",
            json={"reason": "second look"},
            headers={"authorization": f"Bearer {secret}"},
        )
        # an admin token without a user acts as 'token:ci', whom the registry does not list
        # as an approver: the registry's rule, not the route's, refuses it
        assert rejected.status_code == 403
        assert "'token:ci' (scientist) cannot reject it" in rejected.json()["error"]
        missing = api_post(april, "/api/models/churn/versions/7/approve", {"reason": "x"})
        assert missing.status_code == 404 and "no version 7" in missing.json()["error"]
    assert [a.approver for a in registry.approvals("churn", 2)] == [APRIL]


def test_open_high_risks_are_acknowledged_on_the_approval_form(
    store: Store, registry: Registry
) -> None:
    risk = Risks(store).add(
        "churn", title="Leaks <pii>", severity="high", owner="dana", actor=SAM, version=2
    )
    with ui_browsers(store) as login:
        april = login(APRIL)
        form = april.get(f"{V2}/approve").text
        assert f'name="acknowledge" value="{risk.id}"' in form and "Leaks &lt;pii&gt;" in form
        refused = post_form(april, f"{V2}/approve", {"reason": "ok"})
        assert refused.status_code == 409 and f"#{risk.id}" in refused.text
        assert registry.approvals("churn", 2) == []
        done = post_form(april, f"{V2}/approve", {"reason": "ok", "acknowledge": str(risk.id)})
        assert done.status_code == 303
    assert [a.approver for a in registry.approvals("churn", 2)] == [APRIL]
