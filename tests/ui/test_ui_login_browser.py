"""Logging in and out in Chromium as each role; axe-core on the login and error pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from browser_support import (
    PageWatch,
    assert_accessible,
    log_in_page,
    log_out_page,
    save_screenshot,
)
from playwright.sync_api import Browser, Page, expect
from ui_support import ROLE_USERS, add_users

from shipyard.store import Store

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)


def test_each_role_logs_in_sees_itself_and_logs_out(
    store: Store, ui_url: str, page_for: Callable[[str], Page]
) -> None:
    add_users(store)
    page = page_for(ui_url)
    page.goto("/ui/login")
    expect(page.get_by_role("heading", name="Log in to Shipyard")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("User name").fill("vera")
    page.get_by_label("Password").fill("a wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    assert_accessible(page)
    for role, user in ROLE_USERS.items():
        log_in_page(page, user, next="/ui/account")
        expect(page.locator("#who-role")).to_have_text(role)
        expect(page.locator("#account-role")).to_have_text(role)
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        save_screenshot(page, f"login-account-{role}")
        log_out_page(page)
        expect(page.locator("#who-name")).to_have_count(0)
    page.goto("/ui/account")  # logged out: back to the login page, asked to log in
    expect(page.get_by_role("status")).to_have_text("Log in to see this page.")


def test_the_error_page_is_accessible(
    store: Store, ui_url: str, page_for: Callable[[str], Page]
) -> None:
    add_users(store)
    page = page_for(ui_url)
    log_in_page(page, "vera", next="/ui/account")
    response = page.goto("/ui/no/such/page")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text("There is no page at /ui/no/such/page.")
    expect(page.locator("#who-name")).to_have_text("vera")
    assert_accessible(page)


def test_the_page_watch_catches_csp_violations_and_outside_requests(
    ui_url: str, chromium_browser: Browser
) -> None:
    context = chromium_browser.new_context(base_url=ui_url)
    try:
        page = context.new_page()
        watch = PageWatch(page).attach()
        page.goto("/ui/login")
        with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
            page.evaluate("document.querySelector('h1').setAttribute('style', 'color: red')")
        assert any("Content Security Policy" in p for p in watch.problems), watch.problems
        assert watch.outside_requests() == []
        watch.requests.append("https://cdn.example.com/plotly.js")
        assert watch.outside_requests() == ["https://cdn.example.com/plotly.js"]
    finally:
        context.close()
