"""Actions through the UI and /api: promote, canary, split, clear, rollback, acknowledge an
alert. Confirmation pages name the model, version and alias; a stale page or a double submit
is refused (409) and changes nothing; viewers and forms without the CSRF token are refused."""

from __future__ import annotations

import pytest
from review_support import APRIL, SAM, VERA, actions, api_post, seed, ui_browsers
from ui_support import post_form

from shipyard.alerting import Alert, AlertRule, Alerts
from shipyard.registry import Registry, Traffic
from shipyard.store import Store

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

ACT = "/ui/models/churn/actions"


@pytest.fixture
def registry(store: Store, prepared) -> Registry:  # type: ignore[no-untyped-def]
    """churn v1 in production, v2 approved too."""
    registry = seed(store, prepared)
    registry.approve("churn", 2, actor=APRIL, reason="ok")
    return registry


def test_promote_names_what_changes_and_is_audited_as_the_cli(
    store: Store, registry: Registry
) -> None:
    with ui_browsers(store) as login:
        sam = login(SAM)
        page = sam.get(f"{ACT}/promote?version=2")
        assert page.status_code == 200
        assert "churn@production: v1 → v2" in page.text
        assert 'name="expected" value="1"' in page.text
        done = post_form(sam, f"{ACT}/promote", {"version": "2", "expected": "1"})
        assert done.status_code == 303
        assert done.headers["location"] == "/ui/models/churn?done=promoted"
        # the same form again (a double submit, or a stale page) is refused
        again = post_form(sam, f"{ACT}/promote", {"version": "2", "expected": "1"})
        assert again.status_code == 409
        assert "churn@production changed meanwhile: it is v2 now, not v1" in again.text
    assert registry.aliases("churn") == {"production": 2}
    assert actions(store, "version.promoted")[-1] == (SAM, "model:churn/2")
    assert len(actions(store, "version.promoted")) == 2


def test_a_stale_page_changes_nothing(store: Store, registry: Registry) -> None:
    with ui_browsers(store) as login:
        sam = login(SAM)
        stale = post_form(sam, f"{ACT}/promote", {"version": "2", "expected": "none"})
        assert stale.status_code == 409
        stale = post_form(sam, f"{ACT}/canary", {"version": "2", "percent": "10", "expected": "7"})
        assert stale.status_code == 409 and "no policy is in force now" in stale.text
        stale = post_form(sam, f"{ACT}/rollback", {"expected": "2", "expected_policy": "0"})
        assert stale.status_code == 409
        bad = post_form(sam, f"{ACT}/promote", {"version": "2", "expected": "v1"})
        assert bad.status_code == 400
    assert registry.aliases("churn") == {"production": 1}
    assert Traffic(store).current("churn") is None


def test_canary_then_rollback_ends_it_and_clear_refuses_twice(
    store: Store, registry: Registry
) -> None:
    with ui_browsers(store) as login:
        sam = login(SAM)
        page = sam.get(f"{ACT}/canary?version=2&percent=20")
        assert "v2 answers 20.0% of churn" in page.text and 'name="expected" value="0"' in page.text
        done = post_form(sam, f"{ACT}/canary", {"version": "2", "percent": "20", "expected": "0"})
        assert done.headers["location"] == "/ui/models/churn?done=canary"
        policy = Traffic(store).current("churn")
        assert policy is not None and policy.kind == "canary"
        page = sam.get(f"{ACT}/rollback")
        assert "End the canary" in page.text and "churn@production stays v1" in page.text
        form = {"expected": "1", "expected_policy": str(policy.id), "reason": "errors up"}
        ended = post_form(sam, f"{ACT}/rollback", form)
        assert ended.headers["location"] == "/ui/models/churn?done=policy-ended"
        assert post_form(sam, f"{ACT}/rollback", form).status_code == 409
        split = {"weights": "production=50, 2=50", "expected": "0"}
        assert post_form(sam, f"{ACT}/split", split).status_code == 303
        current = Traffic(store).current("churn")
        assert current is not None and current.kind == "split"
        clear = {"expected": str(current.id)}
        assert post_form(sam, f"{ACT}/clear", clear).headers["location"].endswith("=cleared")
        assert post_form(sam, f"{ACT}/clear", clear).status_code == 409
    assert Traffic(store).current("churn") is None
    assert registry.aliases("churn") == {"production": 1}
    assert [a for a, _ in actions(store, "traffic.cleared")] == [SAM, SAM]


def test_rollback_moves_production_back(store: Store, registry: Registry) -> None:
    registry.promote("churn", 2, actor=SAM)
    with ui_browsers(store) as login:
        sam = login(SAM)
        assert "churn@production: v2 → v1" in sam.get(f"{ACT}/rollback").text
        form = {"expected": "2", "expected_policy": "0"}
        done = post_form(sam, f"{ACT}/rollback", form)
        assert done.headers["location"] == "/ui/models/churn?done=rolled-back"
        assert post_form(sam, f"{ACT}/rollback", form).status_code == 409
    assert registry.aliases("churn") == {"production": 1}
    assert actions(store, "version.rolled_back") == [(SAM, "model:churn/1")]


def test_viewers_and_forms_without_csrf_are_refused(store: Store, registry: Registry) -> None:
    with ui_browsers(store) as login:
        vera = login(VERA)
        assert vera.get(f"{ACT}/promote?version=2").status_code == 403
        refused = post_form(vera, f"{ACT}/promote", {"version": "2", "expected": "1"})
        assert refused.status_code == 403
        sam = login(SAM)
        sam.get("/ui/approvals")
        no_csrf = sam.post(f"{ACT}/promote", data={"version": "2", "expected": "1"})
        assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
        anonymous = login(None).post(f"{ACT}/promote", data={"version": "2", "expected": "1"})
        assert anonymous.status_code == 401
        assert sam.get("/ui/models/nope/actions/promote?version=1").status_code == 404
        assert sam.get(f"{ACT}/promote?version=9").status_code == 404
        missing = post_form(
            sam, "/ui/models/nope/actions/promote", {"version": "1", "expected": "0"}
        )
        assert missing.status_code == 404
    assert registry.aliases("churn") == {"production": 1}


def test_the_api_twins_act_with_the_same_rules(store: Store, registry: Registry) -> None:
    with ui_browsers(store) as login:
        sam = login(SAM)
        body = {"version": 2, "expected": 1, "reason": "better"}
        done = api_post(sam, "/api/models/churn/promote", body)
        assert done.status_code == 200, done.text
        assert done.json()["action"] == "promoted" and done.json()["alias"] == "production"
        again = api_post(sam, "/api/models/churn/promote", body)
        assert again.status_code == 409 and "changed meanwhile" in again.json()["error"]
        vera = login(VERA)
        assert api_post(vera, "/api/models/churn/promote", body).status_code == 403
        canary = api_post(
            sam, "/api/models/churn/canary", {"version": 1, "percent": 5, "expected": 0}
        )
        assert canary.status_code == 200 and canary.json()["policy"] > 0
        need = api_post(sam, "/api/models/churn/rollback", {"expected": 2})
        assert need.status_code == 400 and "expected_policy" in need.json()["error"]
        policy = canary.json()["policy"]
        ended = api_post(
            sam, "/api/models/churn/rollback", {"expected": 2, "expected_policy": policy}
        )
        assert ended.json()["action"] == "policy-ended"
        schema = sam.get("/api/openapi.json").json()
        assert "409" in schema["paths"]["/api/models/{name}/promote"]["post"]["responses"]
    assert registry.aliases("churn") == {"production": 2}
    assert Traffic(store).current("churn") is None


def _alert(store: Store) -> str:
    """Raise one alert the way monitoring does (a rule with no channel); its id."""
    rule = AlertRule(name="drift <b>", metric="psi", feature="age", threshold=0.2)
    alert = Alert(rule="drift <b>", severity="warning", model="churn", version=1, metric="psi",
                  feature="age", value=0.4, threshold=0.2,
                  message="age drifted <script>x</script>")  # fmt: skip
    (record,) = Alerts(store).raise_all([(rule, alert)], {}, actor="cron")
    return record.id


def test_acknowledge_an_alert_once(store: Store, registry: Registry) -> None:
    alert = _alert(store)
    with ui_browsers(store) as login:
        sam = login(SAM)
        page = sam.get(f"/ui/alerts/{alert}/ack")
        assert "age drifted &lt;script&gt;x&lt;/script&gt;" in page.text
        assert post_form(login(VERA), f"/ui/alerts/{alert}/ack", {}).status_code == 403
        done = post_form(sam, f"/ui/alerts/{alert}/ack", {})
        assert done.headers["location"] == "/ui/models/churn?done=acknowledged"
        assert "Already acknowledged by sam" in sam.get(f"/ui/alerts/{alert}/ack").text
        assert post_form(sam, f"/ui/alerts/{alert}/ack", {}).status_code == 409
        assert api_post(sam, f"/api/alerts/{alert}/ack", {}).status_code == 409
        assert sam.get("/ui/alerts/nope/ack").status_code == 404
        assert api_post(sam, "/api/alerts/nope/ack", {}).status_code == 404
    assert actions(store, "alert.acknowledged") == [(SAM, "model:churn/1")]
