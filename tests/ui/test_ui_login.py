"""Logging in and the bad input around it: wrong passwords, unknown users, expired and
tampered sessions, CSRF, open redirects, password guessing, HTML in names."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from ui_support import PASSWORD, add_users, browser, csrf_of, log_in, post_form, running_ui

from shipyard.auth import Passwords, Users
from shipyard.settings import UiSettings
from shipyard.store import Store

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

Browser = Callable[[], httpx.Client]
LoggedIn = Callable[[str], httpx.Client]


def _login(client: httpx.Client, user: str, password: str, **extra: str) -> httpx.Response:
    return post_form(client, "/ui/login", {"user": user, "password": password, **extra})


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(
    store: Store, open_browser: Browser
) -> None:
    add_users(store)
    client = open_browser()
    unknown = _login(client, "mallory", PASSWORD)
    wrong = _login(client, "vera", "not the password at all")
    assert unknown.status_code == wrong.status_code == 401
    assert "Wrong user name or password." in unknown.text
    assert "Wrong user name or password." in wrong.text
    assert "shipyard_session" not in client.cookies
    assert client.get("/api/me").status_code == 401


def test_a_user_without_a_password_cannot_log_in(store: Store, open_browser: Browser) -> None:
    Users(store).set_role("nopass", "approver", actor="admin")
    client = open_browser()
    assert _login(client, "nopass", "").status_code == 401
    assert _login(client, "nopass", PASSWORD).status_code == 401


def test_a_session_expires_after_session_hours(store: Store) -> None:
    add_users(store)
    settings = UiSettings(session_hours=1 / 3600)  # one second
    with running_ui(store, settings=settings) as url, browser(url) as client:
        log_in(client, "sam")
        assert client.get("/api/me").json()["name"] == "sam"
        time.sleep(1.5)
        expired = client.get("/api/me")
        assert expired.status_code == 401
        assert expired.json() == {"error": "Your session has expired; log in again."}
        page = client.get("/ui/account")
        assert page.status_code == 303
        query = parse_qs(urlsplit(page.headers["location"]).query)
        assert query == {"next": ["/ui/account"], "reason": ["expired"]}
        login = client.get(page.headers["location"])
        assert "Your session has expired" in login.text


def test_a_tampered_session_cookie_is_refused(logged_in: LoggedIn) -> None:
    client = logged_in("vera")
    cookie = client.cookies["shipyard_session"]
    forged = cookie.replace("vera", "admn", 1) if "vera" in cookie else "x" + cookie[1:]
    client.cookies.set("shipyard_session", forged)
    response = client.get("/api/me")
    assert response.status_code == 401
    assert response.json() == {"error": "Your session is not valid any more; log in again."}
    client.cookies.set("shipyard_session", cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"))
    assert client.get("/api/me").status_code == 401
    page = client.get("/ui/account")
    assert page.status_code == 303 and "reason=login" in page.headers["location"]


def test_a_new_password_ends_the_old_sessions(store: Store, logged_in: LoggedIn) -> None:
    client = logged_in("april")
    Passwords(store).set("april", "another long password", actor="admin")
    response = client.get("/api/me")
    assert response.status_code == 401
    assert "password was changed" in response.json()["error"]
    log_in(client, "april", "another long password")
    assert client.get("/api/me").json()["role"] == "approver"


def test_a_changed_role_counts_at_once(store: Store, logged_in: LoggedIn) -> None:
    client = logged_in("vera")
    Users(store).set_role("vera", "approver", actor="admin")
    assert client.get("/api/me").json() == {"name": "vera", "role": "approver", "via": "session"}


def test_logging_out_ends_the_session_and_needs_the_csrf_token(logged_in: LoggedIn) -> None:
    client = logged_in("sam")
    refused = client.post("/ui/logout")
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    assert client.get("/api/me").status_code == 200
    out = post_form(client, "/ui/logout", {})
    assert out.status_code == 303
    assert out.headers["location"] == "/ui/login?reason=logout"
    assert client.get("/api/me").status_code == 401
    assert "You are logged out." in client.get(out.headers["location"]).text


def test_a_wrong_csrf_token_is_refused(store: Store, open_browser: Browser) -> None:
    add_users(store)
    client = open_browser()
    csrf_of(client)
    response = client.post(
        "/ui/login", data={"user": "sam", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 403
    assert "shipyard_session" not in client.cookies
    log_in(client, "sam")
    header = client.post("/ui/logout", headers={"x-csrf-token": "forged"})
    assert header.status_code == 403
    assert client.get("/api/me").status_code == 200


def test_next_never_leaves_the_ui(store: Store, open_browser: Browser) -> None:
    add_users(store)
    client = open_browser()
    for target in ("//evil.com", "https://evil.com/ui/", "/\\evil.com", "/ui\\@evil.com", "/api"):
        response = _login(client, "sam", PASSWORD, next=target)
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/", target
    kept = _login(client, "sam", PASSWORD, next="/ui/models/churn?days=7")
    assert kept.headers["location"] == "/ui/models/churn?days=7"
    form = client.get("/ui/login", params={"next": "//evil.com"})
    assert 'name="next" value="/ui/"' in form.text


def test_password_guessing_is_slowed_down(store: Store, open_browser: Browser) -> None:
    add_users(store)
    client = open_browser()
    for _ in range(5):
        assert _login(client, "april", "a wrong guess!").status_code == 401
    blocked = _login(client, "april", PASSWORD)
    assert blocked.status_code == 429
    assert "Too many failed logins for &#39;april&#39;" in blocked.text
    assert "try again in 15 minutes" in blocked.text
    assert "shipyard_session" not in client.cookies
    log_in(client, "sam")  # another user from the same address is not held back
    assert client.get("/api/me").json()["name"] == "sam"


def test_html_in_a_user_name_is_shown_as_text(store: Store, open_browser: Browser) -> None:
    name = '<script>alert("x")</script>'
    Users(store).set_role(name, "viewer", actor="admin")
    Passwords(store).set(name, PASSWORD, actor="admin")
    client = open_browser()
    log_in(client, name)
    page = client.get("/ui/account")
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    wrong = _login(client, name, "not the password at all")
    assert "<script>alert" not in wrong.text


def test_the_account_page_names_the_user_and_what_their_role_may_do(logged_in: LoggedIn) -> None:
    client = logged_in("april")
    page = client.get("/ui/account")
    assert '<a href="/ui/account" id="who-name">april</a>' in page.text
    assert "approve or reject versions" in page.text
    assert "manage users" not in page.text
