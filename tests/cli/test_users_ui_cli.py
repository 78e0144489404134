"""``shipyard users set-password`` / ``set-email``, ``tokens create --user`` and the help of
``shipyard ui`` and ``shipyard serve --ui``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cli_support import cli, point_cli_at
from shipyard.auth import Passwords, Tokens
from shipyard.cli import app
from shipyard.serving import free_port
from shipyard.settings import Settings
from shipyard.store import Store

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A fresh store (its admin is ``admin``) with ``vera`` a viewer; returns the user switch."""
    as_user = point_cli_at(monkeypatch, db_url, tmp_path, toml=None)
    assert run_cli_ok(["users", "add", "vera", "--role", "viewer"])
    return as_user


def run_cli_ok(args: list[str]) -> bool:
    from shipyard.cli import run_cli

    return run_cli(args) == 0


def _store() -> Store:
    settings = Settings()
    return Store.from_settings(settings).open()


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def _audit(capsys: pytest.CaptureFixture[str], action: str) -> list[dict[str, object]]:
    code, out, _ = cli(capsys, "audit", "log", "--action", action, "--json")
    assert code == 0
    events: list[dict[str, object]] = json.loads(out)
    return events


def test_an_admin_sets_a_password_from_stdin(env, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    _stdin(monkeypatch, PASSWORD + "\n")
    code, out, _ = cli(capsys, "users", "set-password", "vera", "--password-stdin")
    assert code == 0 and "Set the web UI password of vera" in out
    store = _store()
    try:
        assert Passwords(store).check("vera", PASSWORD) == "viewer"
        assert Passwords(store).check("vera", PASSWORD + "!") is None
    finally:
        store.close()
    [event] = _audit(capsys, "user.password_set")
    assert event["actor"] == "admin" and event["subject"] == "user:vera"
    assert PASSWORD not in json.dumps(event)


def test_set_password_prompts_twice_without_echo(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["users", "set-password", "vera"], input=f"{PASSWORD}\n" * 2)
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert "Repeat for confirmation" in result.output
    store = _store()
    try:
        assert Passwords(store).check("vera", PASSWORD) == "viewer"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("user", "acting", "password", "code", "message"),
    [
        ("vera", "admin", "short", 2, "A password must be 10 to 1024 characters long; this"),
        ("ghost", "admin", PASSWORD, 1, "There is no user 'ghost'; give them a role first"),
        (
            "admin",
            "vera",
            PASSWORD,
            1,
            "'vera' cannot set the password of 'admin': only admins set another",
        ),
    ],
)
def test_set_password_refuses_bad_input(  # type: ignore[no-untyped-def]
    env, capsys, monkeypatch, user, acting, password, code, message
) -> None:
    env(acting)
    capsys.readouterr()
    _stdin(monkeypatch, password + "\n")
    got, _, err = cli(capsys, "users", "set-password", user, "--password-stdin")
    assert got == code
    assert message in " ".join(err.split())
    env("admin")
    assert _audit(capsys, "user.password_set") == []


def test_a_user_sets_their_own_password_and_email(env, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    env("vera")
    _stdin(monkeypatch, PASSWORD + "\n")
    assert cli(capsys, "users", "set-password", "vera", "--password-stdin")[0] == 0
    assert cli(capsys, "users", "set-email", "vera", "vera@example.com")[0] == 0
    code, _, err = cli(capsys, "users", "set-email", "admin", "me@example.com")
    assert code == 1
    assert "'vera' cannot set the e-mail address of 'admin': only admins set another user's" in (
        " ".join(err.split())
    )
    env("admin")
    code, out, _ = cli(capsys, "users", "list", "--json")
    vera = next(u for u in json.loads(out) if u["name"] == "vera")
    assert vera["email"] == "vera@example.com" and vera["password"] is True
    [event] = _audit(capsys, "user.email_set")
    assert event["actor"] == "vera"
    assert event["details"] == {"email": "vera@example.com", "previous": None}


def test_set_email_refuses_what_is_not_an_address(env, capsys) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(capsys, "users", "set-email", "vera", "vera at example")
    assert code == 2 and "'vera at example' is not an e-mail address" in err
    assert cli(capsys, "users", "set-email", "vera", "")[0] == 0  # removes it


def test_tokens_create_for_a_user(env, capsys) -> None:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    code, out, _ = cli(capsys, "tokens", "create", "--role", "scorer", "--user", "vera")
    assert code == 0 and "acts for vera on /api/" in out
    secret = out.strip().splitlines()[-1]
    store = _store()
    try:
        row = Tokens(store).verify(secret)
        assert row is not None and row.user == "vera" and row.name == "vera-scorer"
    finally:
        store.close()
    code, out, _ = cli(capsys, "tokens", "list", "--json")
    assert json.loads(out)[0]["user"] == "vera"
    code, _, err = cli(capsys, "tokens", "create", "--role", "scorer", "--user", "ghost")
    assert code == 1 and "There is no user 'ghost'" in err


def test_the_ui_commands_explain_themselves(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(capsys, "ui", "--help")
    assert code == 0
    for option in ("--host", "--port", "--trusted-header", "--session-hours", "--log-dir"):
        assert option in out
    assert "8600" in out
    code, out, _ = cli(capsys, "serve", "--help")
    assert code == 0 and "--ui" in out and "/ui/" in out
    code, out, _ = cli(capsys, "users", "--help")
    assert "viewer, scientist, approver, admin" in " ".join(out.split())


def test_serve_ui_refuses_several_workers(env, capsys) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(capsys, "serve", "--ui", "--workers", "2")
    assert code == 2 and "--ui serves the web UI from one worker" in " ".join(err.split())


def _serve(args: list[str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shipyard", *args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_until_up(proc: subprocess.Popen[str], url: str) -> httpx.Response:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer in 90 s")


@pytest.mark.parametrize(
    ("args", "server_path"), [(["ui"], None), (["serve", "--ui"], "/v2/health/live")]
)
def test_the_ui_commands_serve_the_login_page(env, args, server_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    proc = _serve(args, port)
    try:
        base = f"http://127.0.0.1:{port}"
        login = _wait_until_up(proc, f"{base}/ui/login")
        assert login.status_code == 200 and "Log in to Shipyard" in login.text
        assert "script-src 'self'" in login.headers["content-security-policy"]
        assert httpx.get(f"{base}/api/me").json() == {"error": "Log in to see this page."}
        if server_path:
            assert httpx.get(f"{base}{server_path}").status_code == 200
        else:
            root = httpx.get(f"{base}/")
            assert root.status_code == 307 and root.headers["location"] == "/ui/"
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
