"""``shipyard ui --allowed-hosts --cors-origins``: the Host and CORS rules of ``shipyard serve``
on the UI served alone, checked on the real command in its own process (both off by default:
any Host answered, no CORS header ever sent)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from cli_support import point_cli_at
from shipyard.serving import free_port

HOST = "ui.example.com"
ORIGIN = "https://app.example.com"


@contextmanager
def shipyard_ui(*options: str) -> Iterator[httpx.Client]:
    """``shipyard ui *options`` in a process of its own; a client of it sending ``Host: HOST``."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard", "ui", "--port", str(port), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Host": HOST}, timeout=10)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                client.get("/ui/login")
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    pytest.fail(f"shipyard ui exited: {proc.stdout.read() if proc.stdout else ''}")
                assert time.monotonic() < deadline, "shipyard ui did not answer in 90 s"
                time.sleep(0.2)
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.communicate(timeout=30)


def _preflight(client: httpx.Client, origin: str) -> httpx.Response:
    return client.options(
        "/api/models",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_shipyard_ui_answers_only_its_hosts_and_opens_cors_to_its_origins(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_cli_at(monkeypatch, db_url, tmp_path, toml=None)
    with shipyard_ui("--allowed-hosts", HOST, "--cors-origins", ORIGIN) as client:
        login = client.get("/ui/login")
        assert login.status_code == 200 and "Log in to Shipyard" in login.text
        for other in ("evil.example", "127.0.0.1", f"{HOST}.evil.example"):
            for path in ("/ui/login", "/api/models", "/ui/static/ui.css"):
                refused = client.get(path, headers={"Host": other})
                assert refused.status_code == 400, (other, path, refused.status_code)
        allowed = _preflight(client, ORIGIN)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in allowed.headers  # tokens, not cookies
        refused = _preflight(client, "https://evil.example")
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        answer = client.get("/api/models", headers={"Origin": ORIGIN})
        assert answer.status_code == 401  # CORS lets the page read the answer, not skip login
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        stranger = client.get("/api/models", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_shipyard_ui_without_them_answers_any_host_and_no_origin(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_cli_at(monkeypatch, db_url, tmp_path, toml=None)
    with shipyard_ui() as client:
        assert client.get("/ui/login", headers={"Host": "anything.example"}).status_code == 200
        preflight = _preflight(client, ORIGIN)
        assert preflight.status_code != 200
        answer = client.get("/api/models", headers={"Origin": ORIGIN})
        for response in (preflight, answer):
            assert not any(h.startswith("access-control-") for h in response.headers)
