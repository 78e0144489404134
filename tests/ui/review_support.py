"""Set-up for the tests of the version page, the approvals inbox and the actions: a store
with the role users (``ui_support.ROLE_USERS``) and ``churn`` v1 (production, approved) and
v2 (a candidate), both registered by the scientist ``sam``, served by a real uvicorn in a
project whose promotions need no gate record."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from ui_support import ROLE_USERS, add_users, browser, csrf_of, log_in, running_ui

from gates_off import NO_GATES
from shipyard.audit import list_events
from shipyard.packaging import PreparedArchive
from shipyard.registry import Registry
from shipyard.store import Store

SAM, APRIL, VERA = ROLE_USERS["scientist"], ROLE_USERS["approver"], ROLE_USERS["viewer"]
#: A second approver, for approving what april registered.
OTTO = "otto"


def seed(store: Store, prepared: PreparedArchive) -> Registry:
    """Users, then churn v1 (production) and v2 (candidate) by sam; april approved v1."""
    add_users(store)
    registry = Registry(store, NO_GATES)
    for _ in range(2):
        registry.register(prepared, name="churn", actor=SAM, description="Churn <b>model</b>")
    registry.approve("churn", 1, actor=APRIL, reason="fine")
    registry.promote("churn", 1, actor=SAM)
    return registry


@contextmanager
def ui_browsers(store: Store) -> Iterator[Callable[[str | None], httpx.Client]]:
    """``login(user)``: a client of the UI over ``store`` (project without gates) logged in
    as ``user`` (``None``: not logged in)."""
    clients: list[httpx.Client] = []
    with running_ui(store, project=NO_GATES) as url:

        def login(user: str | None) -> httpx.Client:
            client = browser(url)
            clients.append(client)
            if user is not None:
                log_in(client, user)
            return client

        try:
            yield login
        finally:
            for client in clients:
                client.close()


def api_post(client: httpx.Client, url: str, body: dict[str, Any]) -> httpx.Response:
    """POST JSON with the session cookie and the CSRF header (what a page script sends)."""
    return client.post(url, json=body, headers={"x-csrf-token": csrf_of(client)})


def actions(store: Store, action: str) -> list[tuple[str, str]]:
    """``(actor, subject)`` of each audit event ``action``, oldest first."""
    with store.read() as session:
        events = list_events(session, action=action, limit=1000)
    return [(e.actor, e.subject) for e in reversed(events)]
