"""The audit, trace and served-at pages and their /api twins, on a real server: every role
reads them, strangers are sent to log in, bad ids and times get 400/404, HTML stays text."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from ui_support import ROLE_USERS, add_users, browser, log_in, running_ui

from shipyard import Client
from shipyard.audit import append_event
from shipyard.predlog import PredictionLog
from shipyard.store import Store
from shipyard.store.tables import AuditEvent
from trace_support import HTML_INPUT, record, server_id, tracked_churn

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

HTML_LABEL = "<img src=x onerror=alert(2)>"


@pytest.fixture
def logged(tmp_path: Path) -> tuple[Path, str]:
    """A log with one prediction of churn v1 (HTML in an input) labelled with HTML."""
    root = tmp_path / "log"
    now = datetime.now(UTC)
    pid = server_id(now)
    with PredictionLog(root) as log:
        log.append([record(pid, now)])
        log.record_feedback("churn", pid, HTML_LABEL)
    return root, pid


@pytest.fixture
def ui(store: Store, logged: tuple[Path, str]) -> Iterator[Callable[[str | None], httpx.Client]]:
    """``ui(user)``: a client of the UI over ``store`` and the log, logged in as ``user``
    (``None``: not logged in)."""
    add_users(store)
    clients: list[httpx.Client] = []
    with running_ui(store, predlog=logged[0]) as url:

        def make(user: str | None) -> httpx.Client:
            clients.append(browser(url))
            return log_in(clients[-1], user) if user else clients[-1]

        yield make
        for client in clients:
            client.close()


@pytest.fixture
def churn(
    client_for: Callable[[str], Client], approver: Client, fitted_pipeline: Any, training_data: Any
) -> Client:
    return tracked_churn(client_for, approver, fitted_pipeline, training_data)


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_viewers_and_admins_trace_a_prediction_with_html_escaped(
    churn: Client, logged: tuple[Path, str], ui: Callable[[str | None], httpx.Client], role: str
) -> None:
    pid = logged[1]
    client = ui(ROLE_USERS[role])
    page = client.get(f"/ui/trace/{pid}")
    assert page.status_code == 200, page.text
    assert "churn v1" in page.text and churn.registry.get_version("churn", 1).digest in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and HTML_INPUT not in page.text
    assert "&lt;img src=x onerror=alert(2)&gt;" in page.text and HTML_LABEL not in page.text
    api = client.get(f"/api/trace/{pid}").json()
    assert api["model"] == "churn" and api["version"] == 1 and api["run"]["user"] == "alice"
    assert api["inputs"]["plan"] == HTML_INPUT and api["labels"][0]["label"] == HTML_LABEL
    assert {d["name"] for d in api["datasets"]} == {"eval", "train"}
    form = client.get(f"/ui/trace?id={pid}")
    assert form.status_code == 303 and form.headers["location"] == f"/ui/trace/{pid}"


def test_unknown_and_malformed_ids(churn: Client, ui: Callable[[str | None], httpx.Client]) -> None:
    client = ui("vera")
    unknown = server_id(datetime.now(UTC))
    page = client.get(f"/ui/trace/{unknown}")
    assert page.status_code == 404 and "No logged prediction has the id" in page.text
    api = client.get(f"/api/trace/{unknown}")
    assert api.status_code == 404 and unknown in api.json()["error"]
    for bad in ("zz-not-hex", "a%2Fb", "%2E%2E%2Fetc%2Fpasswd", "f" * 65):
        assert client.get(f"/api/trace/{bad}").status_code == 400, bad
        assert "hex digits" in client.get(f"/ui/trace/{bad}").text
    assert client.get("/ui/trace").status_code == 200


def test_strangers_are_sent_to_log_in_or_get_401(ui: Callable[[str | None], httpx.Client]) -> None:
    client = ui(None)
    for path in ("/ui/audit", "/ui/trace", "/ui/trace/abc", "/ui/models/churn/served"):
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/login?next=")
    for path in ("/api/audit", "/api/trace/abc", "/api/models/churn/served?at=2026-01-01"):
        response = client.get(path)
        assert response.status_code == 401 and response.json() == {
            "error": "Log in to see this page."
        }


def test_the_audit_page_lists_filters_pages_and_escapes(
    store: Store, ui: Callable[[str | None], httpx.Client]
) -> None:
    with store.write() as session:
        for i in range(120):
            append_event(
                session,
                actor="mallory<b>",
                action="test.event",
                subject="model:<script>",
                details={"i": i, "note": "<script>alert(3)</script>"},
                reason="<i>why</i>",
            )
    client = ui("vera")
    page = client.get("/ui/audit")
    assert page.status_code == 200 and "The hash chain verifies" in page.text
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in page.text and "<script>alert" not in page.text
    assert "mallory&lt;b&gt;" in page.text and "&lt;i&gt;why&lt;/i&gt;" in page.text
    api = client.get("/api/audit").json()
    assert len(api["events"]) == 100 and api["chain"]["ok"] is True
    older = client.get("/api/audit", params={"before": api["next_before"]}).json()
    assert older["events"][0]["seq"] == api["events"][-1]["seq"] - 1
    assert f"before={api['next_before']}" in page.text
    filtered = client.get("/api/audit", params={"actor": "admin"}).json()["events"]
    assert filtered and {e["actor"] for e in filtered} == {"admin"}
    assert client.get("/api/audit", params={"before": "x"}).status_code == 400
    assert client.get("/api/audit", params={"before": 0}).status_code == 400


def test_a_tampered_chain_shows_the_first_broken_event(
    store: Store, ui: Callable[[str | None], httpx.Client]
) -> None:
    with store.write() as session:
        events = [
            append_event(session, actor="alice", action="test.event", subject="x", details={"i": i})
            for i in range(6)
        ]
    seq = events[3].seq
    with store.write() as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == seq).values(details={"i": 0}))
    client = ui("vera")
    page = client.get("/ui/audit")
    assert "The hash chain does not verify" in page.text
    assert f"First broken event:\n  <strong>#{seq}</strong>" in page.text
    chain = client.get("/api/audit").json()["chain"]
    assert chain["ok"] is False and chain["broken_seq"] == seq
    assert f"event {seq} was modified" in chain["problem"]


def test_served_at_pages_and_bad_times(
    churn: Client, ui: Callable[[str | None], httpx.Client]
) -> None:
    before = datetime.now(UTC).isoformat()
    churn.promote("churn", 1, reason="first <b>release</b>")
    client = ui("vera")
    api = client.get("/api/models/churn/served", params={"at": before}).json()
    assert api["version"] is None and "Nothing was served" in api["message"]
    now = datetime.now(UTC).isoformat()
    api = client.get("/api/models/churn/served", params={"at": now}).json()
    assert api["version"] == 1 and api["by"] == "alice"
    page = client.get("/ui/models/churn/served", params={"at": now})
    assert page.status_code == 200 and "v1" in page.text
    assert "first &lt;b&gt;release&lt;/b&gt;" in page.text
    bad = client.get("/api/models/churn/served", params={"at": "last tuesday"})
    assert bad.status_code == 400 and "2026-12-01T10:00" in bad.json()["error"]
    missing = client.get("/api/models/churn/served")
    assert missing.status_code == 400 and "?at=" in missing.json()["error"]
    assert client.get("/ui/models/churn/served", params={"at": "nope"}).status_code == 400
    unknown = client.get("/api/models/nope/served", params={"at": now})
    assert unknown.status_code == 404 and "no model 'nope'" in unknown.json()["error"]
    assert client.get("/ui/models/churn/served").status_code == 200  # the form
