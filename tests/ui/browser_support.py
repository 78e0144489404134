"""Driving Debian's Chromium with Playwright (sync API) in the UI tests, never a downloaded
browser: the browser itself, pages that watch every request they make (all to 127.0.0.1), every
console error and Content-Security-Policy violation, screenshots as test artifacts, and axe-core
for accessibility.

The fixtures (``chromium_browser``, ``page_for``) are in ``tests/ui/conftest.py``; a test uses
them like this::

    def test_x(store, ui_url, page_for):
        add_users(store)                          # ui_support: ROLE_USERS with PASSWORD
        page = page_for(ui_url)                   # watched, screenshot saved at teardown
        log_in_page(page, "april")
        expect(page.locator("#who-role")).to_have_text("approver")
        assert_accessible(page)

Keep browser tests sync and in modules of their own (Playwright's sync API marks an event
loop running while it is started: see ``chromium_browser``), and use web-first
assertions (``expect(locator)...``), never ``wait_for_timeout``.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Page, Request, Response, expect
from ui_support import PASSWORD

REPO = Path(__file__).parents[2]
#: Hosts a page may reach: the test server only.
LOCAL_HOSTS = {"127.0.0.1"}
_LOCAL_SCHEMES = ("data:", "blob:", "about:")


def chromium_path() -> str | None:
    """Debian's chromium (``apt-get install chromium``), or ``None``."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def no_chromium() -> None:
    """Skip the test without Chromium; fail it under ``CI=true``, where it is required."""
    message = "Debian's chromium is not installed (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: the browser tests are required)")
    pytest.skip(message)


def artifacts_dir() -> Path:
    """Where UI screenshots go: ``$SHIPYARD_TEST_ARTIFACTS/ui`` (default ``test-artifacts/ui``
    at the repository root)."""
    root = os.environ.get("SHIPYARD_TEST_ARTIFACTS") or str(REPO / "test-artifacts")
    folder = Path(root) / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def artifact_name(test_name: str) -> str:
    """A file name from a test's name (``test_x[sqlite]`` -> ``test_x-sqlite``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", test_name).strip("-")


def save_screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot of ``page`` as ``<artifacts>/ui/<name>.png``."""
    path = artifacts_dir() / f"{artifact_name(name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@dataclass
class PageWatch:
    """What one page did: every request URL, the documents it navigated to, and the console
    errors, page errors and CSP violations it met."""

    page: Page
    requests: list[str] = field(default_factory=list)
    documents: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def attach(self) -> PageWatch:
        self.page.on("request", self._request)
        self.page.on("response", self._response)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        return self

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _response(self, response: Response) -> None:
        if response.request.is_navigation_request():
            self.documents.add(response.url)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        # A page answered 401/404 on purpose (the error pages under test) is logged as a
        # failed load of the document itself: not a problem of the page.
        if message.text.startswith("Failed to load resource") and (
            message.location.get("url") in self.documents
        ):
            return
        self.problems.append(f"console error: {message.text} ({message.location.get('url')})")

    def outside_requests(self) -> list[str]:
        """Requests to anywhere but the test server."""
        return [
            url
            for url in self.requests
            if not url.startswith(_LOCAL_SCHEMES) and urlsplit(url).hostname not in LOCAL_HOSTS
        ]

    def check(self) -> None:
        """Fail when the page reached outside 127.0.0.1 or met an error or CSP violation."""
        outside = self.outside_requests()
        assert not outside, f"The page made requests outside 127.0.0.1: {outside}"
        assert not self.problems, "The page met errors:\n" + "\n".join(self.problems)


def log_in_page(page: Page, user: str, password: str = PASSWORD, *, next: str = "/ui/") -> None:
    """Log in through the login form as ``user``; waits until the header names them."""
    page.goto(f"/ui/login?next={next}")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#who-name")).to_have_text(user)


def log_out_page(page: Page) -> None:
    """Log out with the header's button; waits for the login page."""
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_have_text("You are logged out.")


def assert_accessible(page: Page) -> None:
    """Run axe-core (bundled with axe-playwright-python, nothing downloaded) on ``page``;
    fail on any violation of impact "serious" or "critical", listing each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    lines = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node.get("target")) for node in v["nodes"][:5])
        for v in bad
    ]
    assert not bad, f"Accessibility violations on {page.url}:\n" + "\n".join(lines)
