"""Who may call what: API tokens for a user, admin and scoring tokens, the trusted proxy
header, roles on the server, and the error shape of pages and /api."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from ui_support import add_users, browser, csrf_of, log_in, running_ui

from shipyard.auth import Tokens, Users
from shipyard.settings import UiSettings
from shipyard.store import Store

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

Browser = Callable[[], httpx.Client]
LoggedIn = Callable[[str], httpx.Client]


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_a_token_for_a_user_acts_as_that_user_with_their_current_role(
    store: Store, ui_url: str
) -> None:
    add_users(store)
    tokens = Tokens(store)
    secret, row = tokens.create(role="scorer", name="vera-laptop", actor="admin", user="vera")
    assert row.user == "vera"
    with browser(ui_url) as client:
        me = client.get("/api/me", headers=_bearer(secret))
        assert me.json() == {"name": "vera", "role": "viewer", "via": "token"}
        assert client.get("/api/users", headers=_bearer(secret)).status_code == 403
        Users(store).set_role("vera", "admin", actor="admin")
        assert client.get("/api/me", headers=_bearer(secret)).json()["role"] == "admin"
        assert client.get("/api/users", headers=_bearer(secret)).status_code == 200
        Users(store).remove("vera", actor="admin")
        gone = client.get("/api/me", headers=_bearer(secret))
        assert gone.status_code == 401
        assert "no longer a user" in gone.json()["error"]


def test_a_scoring_token_without_a_user_is_refused_on_the_api(store: Store, ui_url: str) -> None:
    secret, _ = Tokens(store).create(role="scorer", name="web", actor="admin")
    with browser(ui_url) as client:
        response = client.get("/api/me", headers=_bearer(secret))
    assert response.status_code == 403
    assert "scoring token" in response.json()["error"]
    assert "--user NAME" in response.json()["error"]


def test_an_admin_token_without_a_user_acts_as_the_token(store: Store, ui_url: str) -> None:
    secret, _ = Tokens(store).create(role="admin", name="ops", actor="admin")
    with browser(ui_url) as client:
        me = client.get("/api/me", headers=_bearer(secret))
    assert me.json() == {"name": "token:ops", "role": "admin", "via": "token"}


def test_revoked_and_unknown_tokens_are_refused(store: Store, ui_url: str) -> None:
    add_users(store)
    tokens = Tokens(store)
    secret, row = tokens.create(role="scorer", name="april", actor="admin", user="april")
    tokens.revoke(row.id, actor="admin")
    with browser(ui_url) as client:
        for token in (secret, "sy_not-a-token"):
            response = client.get("/api/me", headers=_bearer(token))
            assert response.status_code == 401
            assert response.json() == {
                "error": "The API token is unknown or revoked; ask an admin for a new one."
            }


def test_a_token_is_made_only_for_a_listed_user(store: Store) -> None:
    import pytest

    from shipyard.errors import NotFound

    with pytest.raises(NotFound, match="There is no user 'ghost'"):
        Tokens(store).create(role="scorer", name="x", actor="admin", user="ghost")


def test_a_viewer_is_refused_what_needs_an_admin(
    open_browser: Browser, logged_in: LoggedIn
) -> None:
    client = logged_in("vera")
    response = client.get("/api/users")
    assert response.status_code == 403
    assert response.json() == {
        "error": "'vera' has the role 'viewer'; this needs 'admin' or above. Ask an admin "
        "('shipyard users add NAME --role ROLE')."
    }
    admin = open_browser()
    log_in(admin, "admin")
    listed = {u["name"]: u for u in admin.get("/api/users").json()}
    assert listed["vera"]["role"] == "viewer"
    assert listed["vera"]["has_password"] is True
    assert "password_hash" not in listed["vera"]


def test_the_trusted_header_is_ignored_unless_turned_on(store: Store, ui_url: str) -> None:
    add_users(store)
    with browser(ui_url) as client:
        assert client.get("/api/me", headers={"x-forwarded-user": "admin"}).status_code == 401


def test_the_trusted_header_names_the_user(store: Store) -> None:
    add_users(store)
    settings = UiSettings(trusted_header="X-Forwarded-User")
    with running_ui(store, settings=settings) as url, browser(url) as client:
        listed = client.get("/api/me", headers={"x-forwarded-user": "april"})
        assert listed.json() == {"name": "april", "role": "approver", "via": "header"}
        unlisted = client.get("/api/me", headers={"x-forwarded-user": "newcomer"})
        assert unlisted.json() == {"name": "newcomer", "role": "viewer", "via": "header"}
        assert client.get("/api/users", headers={"x-forwarded-user": "newcomer"}).status_code == 403
        assert client.get("/api/me").status_code == 401  # no header: log in as usual
        page = client.get("/ui/account", headers={"x-forwarded-user": "april"})
        assert "your company&#39;s sign-in" in page.text
        # a forged cross-site form still needs the CSRF token (the proxy adds the header)
        post = client.post("/ui/logout", headers={"x-forwarded-user": "april"})
        assert post.status_code == 403
        token = csrf_of(client)
        ok = client.post("/ui/logout", headers={"x-forwarded-user": "april", "x-csrf-token": token})
        assert ok.status_code == 303


def test_unknown_paths_get_a_page_or_json_404(logged_in: LoggedIn) -> None:
    client = logged_in("sam")
    page = client.get("/ui/no/such/page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "There is no page at /ui/no/such/page." in page.text
    assert 'id="who-name">sam</a>' in page.text  # the error page still shows who is in
    api = client.get("/api/no/such/thing")
    assert api.status_code == 404
    assert api.json() == {"error": "There is no page at /api/no/such/thing."}


def test_every_response_carries_the_security_headers(store: Store, ui_url: str) -> None:
    with browser(ui_url) as client:
        for path in ("/ui/login", "/api/me", "/ui/nope", "/ui/static/ui.css"):
            headers = client.get(path).headers
            csp = headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script-src 'self'" in csp, path
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert "frame-ancestors 'none'" in csp
            assert headers["x-content-type-options"] == "nosniff"
        assert client.get("/api/me").headers["cache-control"] == "no-store"


def test_the_root_leads_to_the_ui_and_the_api_has_a_schema(ui_url: str) -> None:
    with browser(ui_url) as client:
        root = client.get("/")
        assert root.status_code == 307 and root.headers["location"] == "/ui/"
        schema = client.get("/api/openapi.json").json()
    assert "/api/me" in schema["paths"]
    assert "/api/users" in schema["paths"]
    assert not any(path.startswith("/ui") for path in schema["paths"])
