"""Alias changes reach a running server within a second, with no failed request."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from shipyard.registry import Registry
from shipyard.serving import VERSION_HEADER, create_app
from shipyard.serving import serve_in_thread as uvicorn_server
from shipyard.settings import ServeSettings
from shipyard.store import Store

pytestmark = pytest.mark.anyio
ROW = {"records": [{"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}]}


async def test_promote_and_rollback_under_load(store: Store, churn: Registry) -> None:
    app = create_app(store, settings=ServeSettings(auth=False, runtime="native"))
    # (request start, answer received, status, version), as the client saw them: a request
    # started before a switch may reach the server after it (a busy machine queues it), so
    # the windows below go by start for the new version and by answer for the old one.
    log: list[tuple[float, float, int, str]] = []
    stop = asyncio.Event()

    async def hammer(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            started = time.monotonic()
            response = await client.post("/models/churn/predict", json=ROW)
            version = response.headers.get(VERSION_HEADER, "")
            log.append((started, time.monotonic(), response.status_code, version))

    async def switch(action: str, version: str) -> tuple[float, float]:
        """(when the change was asked for, when it had been made) as this test saw them: the
        server may switch before ``to_thread`` returns here, so windows that must see only
        the old version end at the first, and windows of the new version start after the
        second."""
        asked = time.monotonic()
        if action == "promote":
            await asyncio.to_thread(churn.promote, "churn", 2, actor="alice")
        else:
            await asyncio.to_thread(churn.rollback, "churn", actor="alice")
        switched = time.monotonic()
        while not any(s >= switched and v == version for s, _, _, v in log[-20:]):
            assert time.monotonic() - switched < 1.0, f"v{version} did not answer within 1 s"
            await asyncio.sleep(0.01)
        # Keep the load on past the one-second grace, so requests of the new version alone
        # are there to check.
        await asyncio.sleep(max(0.3, switched + 1.6 - time.monotonic()))
        return asked, switched

    with uvicorn_server(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            # v2 loaded once first: the 1 s bound is the switch, not unpickling a model on a
            # loaded 2-core machine
            warm = await client.post("/models/churn/versions/2/predict", json=ROW)
            assert warm.status_code == 200
            workers = [asyncio.create_task(hammer(client)) for _ in range(8)]
            await asyncio.sleep(0.3)
            _, promoted = await switch("promote", "2")
            # and v1 again (the promotion closed it)
            warm = await client.post("/models/churn/versions/1/predict", json=ROW)
            assert warm.status_code == 200
            rollback_asked, rolled_back = await switch("rollback", "1")
            stop.set()
            await asyncio.gather(*workers)

    assert len(log) > 50
    assert all(status == 200 for _, _, status, _ in log), {s for _, _, s, _ in log}
    # Every request sent a second after the switch and answered before the next change was
    # asked for is answered by the new version.
    late_v2 = [v for s, e, _, v in log if s >= promoted + 1.0 and e < rollback_asked]
    assert late_v2
    assert set(late_v2) <= {"2"}
    late_v1 = [v for s, _, _, v in log if s >= rolled_back + 1.0]
    assert set(late_v1) <= {"1"}
    assert {"1", "2"} <= {v for _, _, _, v in log}
