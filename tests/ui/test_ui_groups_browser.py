"""A model group in Debian's Chromium: a viewer finds it in the catalogue, opens its page,
reads that it can answer and which version each member's alias points at, and follows a
member to its version page; axe-core checks both pages (``page_for`` saves a screenshot and
fails on any request leaving 127.0.0.1, console error or CSP violation)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from browser_support import assert_accessible, log_in_page, save_screenshot
from playwright.sync_api import Page, expect
from review_support import VERA
from ui_support import running_ui

from gates_off import NO_GATES
from shipyard.registry import Groups
from shipyard.store import Store

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

#: Web-first assertions wait this long (ms): the test machine may be heavily loaded.
SLOW = 30_000


def test_a_viewer_opens_a_group_from_the_catalogue(
    store: Store, ui_groups: Groups, page_for: Callable[[str], Page]
) -> None:
    with running_ui(store, project=NO_GATES) as url:
        page = page_for(url)
        log_in_page(page, VERA)
        groups = page.get_by_role("table", name="Model groups with their members")
        expect(groups.get_by_role("row")).to_have_count(3)  # the header and two groups
        expect(groups).to_contain_text("Keep <b>valuable</b> customers")  # as text, not markup
        assert_accessible(page)
        groups.get_by_role("link", name="retention").click()
        expect(page).to_have_url(re.compile(r"/ui/groups/retention$"), timeout=SLOW)
        expect(page.get_by_role("heading", level=1)).to_have_text("Group retention can answer")
        members = page.get_by_role("table", name=re.compile("^The members of retention"))
        value = members.get_by_role("row").filter(has_text="value")
        expect(value).to_contain_text("@production")
        assert_accessible(page)
        save_screenshot(page, "group-page")
        value.get_by_role("link", name="v1").click()
        expect(page).to_have_url(re.compile(r"/ui/models/value/versions/1$"), timeout=SLOW)
        expect(page.get_by_role("heading", level=1)).to_contain_text("value v1")
