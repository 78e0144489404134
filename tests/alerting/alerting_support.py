"""Real servers for the alerting tests (SMTP via aiosmtpd, HTTP, a hanging socket) and the
per-channel harnesses; imported by conftest.py and the tests under a unique module name.

Each server listens on a free port in a thread and is closed at the end of its test. The
``harness`` fixture gives the shared contract suite one object per built-in channel that
knows how to point it at a server that accepts, refuses or hangs.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from shipyard.alerting import CHANNELS, Alert, Channel, EmailChannel, WebhookChannel

TIMEOUT = 0.5
BACKOFF = 0.01


@pytest.fixture
def alert() -> Alert:
    return Alert(
        id="a1b2c3",
        rule="churn-psi",
        severity="critical",
        model="churn",
        version=3,
        metric="psi",
        feature="age",
        value=0.3141,
        threshold=0.2,
        message="PSI of age is above the critical threshold.",
        created_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        link="http://127.0.0.1:8000/models/churn/3/drift",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- SMTP -------------------------------------------------------------------------------


@dataclass
class SmtpHandler:
    """Records every message; replies ``data_reply`` to DATA (``None``: accept)."""

    data_reply: str | None = None
    envelopes: list[Envelope] = field(default_factory=list)
    data_calls: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_calls += 1
        if self.data_reply is not None:
            return self.data_reply
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@dataclass
class Authenticator:
    """Accepts one login and records every attempt."""

    username: str
    password: str
    attempts: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.attempts.append((mechanism, login, password))
        ok = (login, password) == (self.username, self.password)
        return AuthResult(success=ok, handled=False)


SmtpServerFactory = Callable[..., tuple[int, SmtpHandler]]


@pytest.fixture
def smtp_server() -> Iterator[SmtpServerFactory]:
    """``smtp_server(data_reply=None, authenticator=None) -> (port, handler)``."""
    controllers: list[Controller] = []

    def start(
        data_reply: str | None = None, authenticator: Authenticator | None = None
    ) -> tuple[int, SmtpHandler]:
        handler = SmtpHandler(data_reply=data_reply)
        port = free_port()
        extra: dict[str, Any] = {}
        if authenticator is not None:
            extra = {"authenticator": authenticator, "auth_require_tls": False}
        controller = Controller(handler, hostname="127.0.0.1", port=port, **extra)
        controller.start()
        controllers.append(controller)
        return port, handler

    yield start
    for controller in controllers:
        controller.stop()


# --- HTTP -------------------------------------------------------------------------------


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


class HttpRecorder:
    """An HTTP server replying ``statuses`` in turn (the last one repeats), recording requests."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[Recorded] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                recorder.requests.append(Recorded(self.path, dict(self.headers), body))
                index = min(len(recorder.requests), len(recorder.statuses)) - 1
                status = recorder.statuses[index]
                reply = json.dumps({"status": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def http_server() -> Iterator[Callable[..., HttpRecorder]]:
    """``http_server(*statuses) -> HttpRecorder`` (default: always 200)."""
    servers: list[HttpRecorder] = []

    def start(*statuses: int) -> HttpRecorder:
        server = HttpRecorder(list(statuses) or [200])
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


# --- A server that accepts connections and never says a word ---------------------------


@pytest.fixture
def hanging_port() -> Iterator[int]:
    """A listening socket that is never ``accept``-ed: the kernel completes the TCP handshake,
    so clients connect, then wait forever for a greeting or a response."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as sock:
        yield int(sock.getsockname()[1])


# --- One harness per built-in channel for the contract suite ----------------------------


class Harness:
    """Points one channel kind at a server that accepts, refuses or hangs."""

    kind: str
    bad_configs: list[dict[str, Any]]

    def accepting(self, **options: Any) -> Channel:
        raise NotImplementedError

    def delivered(self) -> int:
        raise NotImplementedError

    def refusing(self, **options: Any) -> Channel:
        raise NotImplementedError

    def hanging(self, port: int, **options: Any) -> Channel:
        raise NotImplementedError


class EmailHarness(Harness):
    kind = "email"
    bad_configs = [  # noqa: RUF012  (a test table)
        {"sender": "shipyard@example.com", "to": ["ops@example.com"]},  # no host
        {"host": "localhost", "sender": "nobody", "to": ["ops@example.com"]},
        {"host": "localhost", "sender": "s@example.com", "to": []},
        {"host": "localhost", "sender": "s@example.com", "to": "ops@example.com"},
        {"host": "localhost", "sender": "s@example.com", "to": ["o@x.io"], "port": 0},
        {"host": "localhost", "sender": "s@example.com", "to": ["o@x.io"], "timeout": 0},
        {"host": "localhost", "sender": "s@example.com", "to": ["o@x.io"], "attempts": 0},
        {"host": "localhost", "sender": "s@example.com", "to": ["o@x.io"], "username": "u"},
        {"host": "localhost", "sender": "s@example.com", "to": ["o@x.io"], "tls": True},
    ]

    def __init__(self, smtp_server: SmtpServerFactory) -> None:
        self.smtp_server = smtp_server
        self.handler: SmtpHandler | None = None

    def _channel(self, port: int, **options: Any) -> Channel:
        config = {
            "host": "127.0.0.1",
            "port": port,
            "from": "shipyard@example.com",
            "to": ["ops@example.com"],
            "timeout": TIMEOUT,
            "backoff": BACKOFF,
            **options,
        }
        return EmailChannel.from_config(config)

    def accepting(self, **options: Any) -> Channel:
        port, self.handler = self.smtp_server()
        return self._channel(port, **options)

    def delivered(self) -> int:
        assert self.handler is not None
        return len(self.handler.envelopes)

    def refusing(self, **options: Any) -> Channel:
        port, _ = self.smtp_server(data_reply="550 5.7.1 Message rejected as spam")
        return self._channel(port, **options)

    def hanging(self, port: int, **options: Any) -> Channel:
        return self._channel(port, **options)


class WebhookHarness(Harness):
    kind = "webhook"
    bad_configs = [  # noqa: RUF012  (a test table)
        {},  # no url
        {"url": "ftp://example.com/hook"},
        {"url": "not a url"},
        {"url": "http://example.com/hook", "headers": {"X-Token": 3}},
        {"url": "http://example.com/hook", "timeout": -1},
        {"url": "http://example.com/hook", "backoff": -0.5},
        {"url": "http://example.com/hook", "attempts": 1.5},
        {"url": "http://example.com/hook", "method": "PUT"},
    ]

    def __init__(self, http_server: Callable[..., HttpRecorder]) -> None:
        self.http_server = http_server
        self.server: HttpRecorder | None = None

    def _channel(self, url: str, **options: Any) -> Channel:
        config = {"url": url, "timeout": TIMEOUT, "backoff": BACKOFF, **options}
        return WebhookChannel.from_config(config)

    def accepting(self, **options: Any) -> Channel:
        self.server = self.http_server(200)
        return self._channel(self.server.url, **options)

    def delivered(self) -> int:
        assert self.server is not None
        return len(self.server.requests)

    def refusing(self, **options: Any) -> Channel:
        server = self.http_server(503)
        return self._channel(server.url, **options)

    def hanging(self, port: int, **options: Any) -> Channel:
        return self._channel(f"http://127.0.0.1:{port}/hook", **options)


@pytest.fixture(params=sorted(CHANNELS))
def harness(
    request: pytest.FixtureRequest,
    smtp_server: SmtpServerFactory,
    http_server: Callable[..., HttpRecorder],
) -> Harness:
    kind = request.param
    if kind == "email":
        return EmailHarness(smtp_server)
    if kind == "webhook":
        return WebhookHarness(http_server)
    pytest.fail(
        f"Channel {kind!r} is registered in CHANNELS but has no test harness: "
        f"add a Harness subclass for it in tests/alerting/conftest.py."
    )
