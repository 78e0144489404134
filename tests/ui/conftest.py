"""UI fixtures: ``ui_url``, the UI over the test store served on a real socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from ui_support import add_users, browser, log_in, running_ui

from shipyard.store import Store


@pytest.fixture
def ui_url(store: Store) -> Iterator[str]:
    """The base URL of the UI over ``store`` (default settings, no prediction log)."""
    with running_ui(store) as url:
        yield url


@pytest.fixture
def open_browser(ui_url: str) -> Iterator[Callable[[], httpx.Client]]:
    """``open_browser()``: a new cookie-keeping client of ``ui_url``, closed after the test."""
    clients: list[httpx.Client] = []

    def make() -> httpx.Client:
        clients.append(browser(ui_url))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def logged_in(
    store: Store, open_browser: Callable[[], httpx.Client]
) -> Callable[[str], httpx.Client]:
    """``logged_in("vera")``: a new client of ``ui_url`` logged in as that user through the
    login form; the ``ROLE_USERS`` get their roles and ``PASSWORD`` on first use."""
    added: list[bool] = []

    def make(user: str) -> httpx.Client:
        if not added:
            add_users(store)
            added.append(True)
        return log_in(open_browser(), user)

    return make
