"""UI fixtures: ``ui_url``, the UI over the test store served on a real socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from ui_support import browser, running_ui

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
