"""The whole web UI in Debian's Chromium, as its users meet it: each role logs in, finds a
model by search and reads its health; an approver (not the author) approves a version from
the inbox; a scientist starts a canary and rolls production back through the confirmation
pages; the audit page shows what they did with the chain verified; a prediction is traced
by id; a viewer sees everything and can act on nothing. axe-core checks every page, and the
``page_for`` fixture saves a screenshot per test and fails on any request leaving 127.0.0.1,
console error or CSP violation."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from browser_support import assert_accessible, log_in_page, log_out_page, save_screenshot
from playwright.sync_api import Page, expect
from review_support import APRIL, SAM, VERA, seed
from ui_support import ROLE_USERS, running_ui

from gates_off import NO_GATES
from overview_data import register_churn, save_window, shifted
from shipyard import Client
from shipyard.packaging import PreparedArchive
from shipyard.predlog import PredictionLog
from shipyard.store import Store
from trace_support import HTML_INPUT, record, server_id

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

#: Web-first assertions wait this long (ms): the test machine may be heavily loaded.
SLOW = 30_000
LABEL = "stay"


@dataclass
class World:
    url: str
    prediction: str


@pytest.fixture
def world(
    store: Store,
    prepared: PreparedArchive,
    client_for: Callable[[str], Client],
    tmp_path: Path,
) -> Iterator[World]:
    """churn v1 (production) and v2 (sam asked april to review it) monitored and healthy;
    ``fraud`` with its ``age`` drifted; one logged and labelled prediction of churn v1; the
    UI served over it all."""
    registry = seed(store, prepared)
    registry.request_approval("churn", 2, actor=SAM, comment="AUC up on fresh data")
    admin = client_for("admin")
    now = datetime.now(UTC)
    save_window(admin, "churn", shifted(2), end=now)
    register_churn(admin, "fraud", description="Flags risky card payments")
    save_window(admin, "fraud", shifted(1, "age"), end=now)
    log = tmp_path / "log"
    pid = server_id(now)
    with PredictionLog(log) as predictions:
        predictions.append([record(pid, now)])
        predictions.record_feedback("churn", pid, LABEL)
    with running_ui(store, project=NO_GATES, predlog=log) as url:
        yield World(url, pid)


def _search(page: Page, words: str) -> None:
    page.goto("/ui/")
    page.get_by_role("searchbox", name="Search").fill(words)
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("status")).to_have_text("1 model.", timeout=SLOW)


def test_each_role_finds_a_model_by_search_and_reads_its_health(
    world: World, page_for: Callable[[str], Page]
) -> None:
    page = page_for(world.url)
    for role, user in ROLE_USERS.items():
        log_in_page(page, user)
        expect(page.locator("#who-role")).to_have_text(role)
        _search(page, "fraud")
        row = page.get_by_role("row").filter(has_text="fraud")
        expect(row.locator(".badge")).to_have_text("needs attention")
        expect(row.get_by_role("listitem").first).to_have_text("1 feature drifted: age")
        _search(page, "churn")
        row = page.get_by_role("row").filter(has_text="churn")
        expect(row.locator(".badge")).to_have_text("healthy")
        expect(row).to_contain_text("production v1")
        log_out_page(page)
    log_in_page(page, VERA)
    _search(page, "fraud")
    assert_accessible(page)
    page.get_by_role("link", name="fraud").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("needs attention")
    health = page.get_by_role("region", name="Health")
    expect(health.get_by_role("listitem").first).to_have_text("1 feature drifted: age")
    assert_accessible(page)
    page.get_by_role("link", name="Monitoring", exact=True).click()
    expect(page).to_have_url(re.compile(r"/ui/models/fraud/monitoring$"), timeout=SLOW)
    assert_accessible(page)


def test_approve_as_a_second_user_then_canary_and_roll_back_and_see_the_audit(
    world: World, page_for: Callable[[str], Page]
) -> None:
    page = page_for(world.url)
    # april approves sam's v2 from her inbox, giving a reason on the confirmation page
    log_in_page(page, APRIL, next="/ui/approvals")
    card = page.locator("article").filter(has_text="churn v2")
    expect(card).to_contain_text("AUC up on fresh data")
    assert_accessible(page)
    card.get_by_role("link", name="Approve…").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("churn", timeout=SLOW)
    assert_accessible(page)
    page.get_by_label("Reason (required)").fill("Better AUC, no open risk")
    page.get_by_role("button", name="Approve churn v2").click()
    expect(page).to_have_url(re.compile(r"/ui/models/churn\?done=approved$"), timeout=SLOW)
    versions = page.get_by_role("row").filter(has=page.get_by_role("link", name="v2", exact=True))
    expect(versions).to_contain_text("april")
    log_out_page(page)

    # sam starts a canary of v2 from its version page
    log_in_page(page, SAM, next="/ui/models/churn/versions/2")
    expect(page.get_by_role("heading", level=1)).to_contain_text("churn v2")
    assert_accessible(page)
    expect(page.get_by_role("link", name="Start a canary (10%)")).to_be_visible()
    page.get_by_role("link", name="churn", exact=True).click()  # the model page's own action
    page.get_by_role("link", name="Start a canary of v2 (10%)").click()
    confirm = page.get_by_role("row", name=re.compile("^Change"))
    expect(confirm).to_contain_text("v2 answers 10.0% of churn's requests; production v1")
    expect(page.get_by_role("row", name=re.compile("^Model"))).to_contain_text("churn")
    expect(page.get_by_label("Percent of requests for v2")).to_have_value("10.0")
    assert_accessible(page)
    page.get_by_role("button", name="Confirm: Start a canary of churn v2").click()
    expect(page).to_have_url(re.compile(r"/ui/models/churn\?done=canary$"), timeout=SLOW)
    expect(page.get_by_role("status")).to_have_text(re.compile("^Canary started"))
    expect(page.get_by_text("In force:")).to_contain_text("canary")

    # ... and rolls production back: first the canary ends, then v2 -> v1 after a promotion
    page.get_by_role("link", name="Roll back").click()
    expect(page.get_by_role("row", name=re.compile("^Change"))).to_contain_text("End the canary")
    page.get_by_label(re.compile("^Reason")).fill("errors up in the canary")
    page.get_by_role("button", name="Confirm: Roll back churn@production").click()
    expect(page).to_have_url(re.compile(r"\?done=policy-ended$"), timeout=SLOW)
    expect(page.get_by_text("None: every request goes to the production version.")).to_be_visible()
    page.goto("/ui/models/churn/versions/2")
    page.get_by_role("link", name="Promote to production").click()
    expect(page.get_by_role("row", name=re.compile("^Change"))).to_contain_text(
        "churn@production: v1 → v2"
    )
    page.get_by_role("button", name="Confirm: Promote churn v2 to production").click()
    expect(page).to_have_url(re.compile(r"\?done=promoted$"), timeout=SLOW)
    page.get_by_role("link", name="Roll back").click()
    expect(page.get_by_role("row", name=re.compile("^Change"))).to_contain_text(
        "churn@production: v2 → v1"
    )
    page.get_by_label(re.compile("^Reason")).fill("latency regression")
    page.get_by_role("button", name="Confirm: Roll back churn@production").click()
    expect(page).to_have_url(re.compile(r"\?done=rolled-back$"), timeout=SLOW)
    expect(page.get_by_role("status")).to_have_text(re.compile("^Rolled back: production"))
    aliases = page.get_by_role("row").filter(has=page.get_by_role("cell", name="production"))
    expect(aliases.first).to_contain_text("v1")
    save_screenshot(page, "e2e-model-after-rollback")

    # the audit page lists each step, by whom, with the chain verified
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    expect(page.get_by_role("status")).to_contain_text("The hash chain verifies", timeout=SLOW)
    for actor, action, reason in (
        (APRIL, "version.approved", "Better AUC, no open risk"),
        (SAM, "traffic.canary", ""),
        (SAM, "version.promoted", ""),
        (SAM, "version.rolled_back", "latency regression"),
    ):
        row = page.get_by_role("row").filter(has=page.get_by_text(action, exact=True)).first
        expect(row).to_contain_text(actor)
        expect(row).to_contain_text("model:churn")
        expect(row).to_contain_text(reason)
    assert_accessible(page)


def test_trace_a_prediction_by_id(world: World, page_for: Callable[[str], Page]) -> None:
    page = page_for(world.url)
    log_in_page(page, VERA)
    page.get_by_role("link", name="Trace a prediction").click()
    assert_accessible(page)
    page.get_by_label("Prediction id").fill(world.prediction)
    page.get_by_role("button", name="Trace").click()
    expect(page).to_have_url(re.compile(f"/ui/trace/{world.prediction}$"), timeout=SLOW)
    expect(page.get_by_role("row", name=re.compile("^Model"))).to_contain_text("churn v1")
    expect(page.get_by_role("row", name=re.compile("^Label"))).to_contain_text(LABEL)
    inputs = page.get_by_role("row").filter(has=page.get_by_role("cell", name="plan"))
    expect(inputs).to_contain_text(HTML_INPUT)  # shown as text, never run
    expect(page.get_by_role("row", name=re.compile("^Archive digest"))).to_be_visible()
    assert_accessible(page)


def test_a_viewer_sees_but_cannot_act(world: World, page_for: Callable[[str], Page]) -> None:
    page = page_for(world.url)
    log_in_page(page, VERA, next="/ui/models/churn")
    expect(page.get_by_role("heading", name="Versions")).to_be_visible()
    expect(page.get_by_role("heading", name="Actions")).to_have_count(0)
    expect(page.get_by_role("link", name="Roll back")).to_have_count(0)
    page.get_by_role("link", name="v2", exact=True).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("churn v2")
    expect(page.get_by_role("link", name="Promote to production")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("canary"))).to_have_count(0)
    page.goto("/ui/approvals")
    expect(page.locator("article").filter(has_text="churn v2")).to_be_visible()
    expect(page.get_by_role("link", name="Approve…")).to_have_count(0)
    for url in (
        "/ui/models/churn/actions/rollback",
        "/ui/models/churn/actions/canary?version=2&percent=10",
        "/ui/models/churn/versions/2/approve",
    ):
        response = page.goto(url)
        assert response is not None and response.status == 403, url
        expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
        expect(page.get_by_role("alert")).to_contain_text("viewer")
    assert_accessible(page)
