"""The UI's shell: logging in, sessions, CSRF and the error shape (foundation checks; the
full suite of bad input lives in test_ui_login.py)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from ui_support import PASSWORD, add_users, csrf_of, log_in

from shipyard.store import Store


def test_login_with_the_right_password_opens_a_session(
    store: Store, open_browser: Callable[[], httpx.Client]
) -> None:
    add_users(store)
    client = open_browser()
    log_in(client, "april")
    me = client.get("/api/me", headers={"x-csrf-token": csrf_of(client)})
    assert me.json() == {"name": "april", "role": "approver", "via": "session"}


def test_a_wrong_password_is_refused_and_opens_nothing(
    store: Store, open_browser: Callable[[], httpx.Client]
) -> None:
    add_users(store)
    client = open_browser()
    token = csrf_of(client)
    response = client.post(
        "/ui/login", data={"user": "april", "password": PASSWORD + "x", "csrf_token": token}
    )
    assert response.status_code == 401
    assert "Wrong user name or password" in response.text
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/me").json() == {"error": "Log in to see this page."}


def test_login_without_the_csrf_token_is_refused(
    store: Store, open_browser: Callable[[], httpx.Client]
) -> None:
    add_users(store)
    client = open_browser()
    client.get("/ui/login")
    response = client.post("/ui/login", data={"user": "april", "password": PASSWORD})
    assert response.status_code == 403
    assert "CSRF" in response.text


def test_pages_send_a_strict_content_security_policy(
    open_browser: Callable[[], httpx.Client],
) -> None:
    client = open_browser()
    response = client.get("/ui/login")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "unsafe-inline" not in response.headers["content-security-policy"]
