"""Helpers for the UI tests: a store with users who have passwords, and logged-in clients."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from shipyard.auth import Passwords, Users
from shipyard.config import ProjectConfig
from shipyard.serving import serve_in_thread
from shipyard.settings import UiSettings
from shipyard.store import Store
from shipyard.ui import create_ui

PASSWORD = "correct horse battery staple"
#: One user per role; ``admin`` created the store.
ROLE_USERS = {"viewer": "vera", "scientist": "sam", "approver": "april", "admin": "admin"}


def add_users(store: Store, *, actor: str = "admin") -> None:
    """Give each of ``ROLE_USERS`` its role and ``PASSWORD`` (``actor`` must be an admin)."""
    users, passwords = Users(store), Passwords(store)
    for role, name in ROLE_USERS.items():
        if name != actor:
            users.set_role(name, role, actor=actor)
        passwords.set(name, PASSWORD, actor=actor)


@contextmanager
def running_ui(
    store: Store,
    *,
    project: ProjectConfig | None = None,
    settings: UiSettings | None = None,
    predlog: Path | None = None,
) -> Iterator[str]:
    """``create_ui`` served by a real uvicorn on a thread; yields its base URL."""
    app = create_ui(store, project=project, settings=settings, predlog=predlog)
    with serve_in_thread(app) as url:
        yield url


def browser(url: str) -> httpx.Client:
    """A client keeping cookies like a browser (not logged in); no redirects followed."""
    return httpx.Client(base_url=url, follow_redirects=False, timeout=30)


def csrf_of(client: httpx.Client) -> str:
    """The CSRF token the client's cookie holds (GET a page first)."""
    token = client.cookies.get("shipyard_csrf")
    if not token:
        page = client.get("/ui/login")
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match, page.text
        token = match.group(1)
    return token


def log_in(client: httpx.Client, user: str, password: str = PASSWORD) -> httpx.Client:
    """Log ``client`` in as ``user`` through the login form; asserts it worked."""
    token = csrf_of(client)
    response = client.post(
        "/ui/login", data={"user": user, "password": password, "csrf_token": token, "next": "/ui/"}
    )
    assert response.status_code == 303, response.text
    return client


def post_form(client: httpx.Client, url: str, data: dict[str, str]) -> httpx.Response:
    """POST a form with the client's CSRF token added."""
    return client.post(url, data={**data, "csrf_token": csrf_of(client)})
