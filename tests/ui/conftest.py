"""UI fixtures: ``ui_url``, the UI over the test store served on a real socket; ``open_browser``
and ``logged_in`` (httpx clients keeping cookies); ``chromium_browser`` and ``page_for``
(Debian's Chromium through Playwright, see ``browser_support``); ``ui_groups``: model groups
over the group tests' models, with the role users."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
from ui_support import add_users, browser, log_in, running_ui

from gates_off import NO_GATES
from group_models import register_group_models
from shipyard import Client
from shipyard.registry import Groups, Registry
from shipyard.store import Store

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture
def ui_url(store: Store) -> Iterator[str]:
    """The base URL of the UI over ``store`` (default settings, no prediction log)."""
    with running_ui(store) as url:
        yield url


@pytest.fixture
def open_browser(ui_url: str) -> Iterator[Callable[[], httpx.Client]]:
    """``open_browser()``: a new cookie-keeping client of ``ui_url``, closed after the test."""
    clients: list[httpx.Client] = []

    def make() -> httpx.Client:
        clients.append(browser(ui_url))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def logged_in(
    store: Store, open_browser: Callable[[], httpx.Client]
) -> Callable[[str], httpx.Client]:
    """``logged_in("vera")``: a new client of ``ui_url`` logged in as that user through the
    login form; the ``ROLE_USERS`` get their roles and ``PASSWORD`` on first use."""
    added: list[bool] = []

    def make(user: str) -> httpx.Client:
        if not added:
            add_users(store)
            added.append(True)
        return log_in(open_browser(), user)

    return make


@pytest.fixture
def ui_groups(store: Store, approver: Client, fitted_pipeline, training_data) -> Groups:  # type: ignore[no-untyped-def]
    """The ``ROLE_USERS``, then ``retention`` (a chain churn -> value, its description with
    HTML in it) and ``consensus`` (churn and churn_tree weighted 3:1), every member in
    production at v1 (``group_models``)."""
    add_users(store)
    registry = Registry(store, NO_GATES)
    register_group_models(registry, approver, fitted_pipeline, training_data)
    groups = Groups(store, registry)
    groups.create(
        "retention",
        ["churn@production", "value@production"],
        "chain",
        actor="alice",
        description="Keep <b>valuable</b> customers",
    )
    groups.create(
        "consensus",
        ["churn@production", "churn_tree@production"],
        "weighted",
        weights=[3, 1],
        actor="alice",
    )
    return groups


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator[Browser]:
    """Debian's Chromium, launched once per test module through Playwright's sync API (never
    a downloaded browser); skipped without it, failed under ``CI=true``.

    Module scope, not session: while Playwright's sync API is started it marks an event loop
    as running in the main thread, and every asyncio test after it (anyio's runner) would
    fail with "Cannot run the event loop while another loop is running". So a module of
    browser tests holds only sync tests, and Playwright stops when the module ends."""
    from browser_support import chromium_path, no_chromium
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        no_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page_for(
    chromium_browser: Browser, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], Page]]:
    """``page_for(ui_url)``: a page in a new browser context whose relative URLs start at
    ``ui_url``. At teardown each page's screenshot is saved (``test-artifacts/ui/<test>.png``)
    and the test fails if a page requested anything outside 127.0.0.1 or met a console error
    or CSP violation."""
    from browser_support import PageWatch, save_screenshot

    watches: list[PageWatch] = []
    contexts = []

    def make(base_url: str) -> Page:
        context = chromium_browser.new_context(base_url=base_url)
        contexts.append(context)
        page = context.new_page()
        watches.append(PageWatch(page).attach())
        return page

    yield make
    try:
        for index, watch in enumerate(watches):
            suffix = f"-{index + 1}" if index else ""
            save_screenshot(watch.page, request.node.name + suffix)
        for watch in watches:
            watch.check()
    finally:
        for context in contexts:
            context.close()
