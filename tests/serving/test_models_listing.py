"""``GET /models`` lists, per model, the traffic policy the server applies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gates_off import NO_GATES
from serving.conftest import http
from shipyard.registry import Registry, Traffic
from shipyard.serving import create_app
from shipyard.settings import ServeSettings
from shipyard.store import Store

pytestmark = pytest.mark.anyio


async def test_listing_shows_the_policy_in_force(store: Store, churn: Registry) -> None:
    app = create_app(
        store, settings=ServeSettings(auth=False, runtime="native", poll_interval_seconds=0.05)
    )
    traffic = Traffic(store, NO_GATES)
    async with http(app) as client:
        listing: dict[str, Any] = {}

        async def models() -> dict[str, Any]:
            r = await client.get("/models")
            assert r.status_code == 200
            body: dict[str, Any] = r.json()
            [model] = body["models"]
            return model  # type: ignore[no-any-return]

        async def refreshed(policy_id: int | None) -> dict[str, Any]:
            async def poll() -> bool:
                listing.update(await models())
                policy = listing["traffic"]
                return (policy["policy_id"] if policy else None) == policy_id

            await wait_for_async(poll)
            return listing

        first = await models()
        assert first["name"] == "churn" and first["version"] == 1
        assert first["traffic"] is None and first["policy_error"] is None

        canary = traffic.canary("churn", 2, 20, actor="alice", sticky="header:X-User")
        got = (await refreshed(canary.id))["traffic"]
        assert got["kind"] == "canary" and got["sticky"] == "header:x-user"
        assert got["arms"] == [
            {"label": "production", "version": 1, "alias": True, "weight": 80.0},
            {"label": "canary", "version": 2, "alias": False, "weight": 20.0},
        ]
        assert got["shadow"] is None and got["by"] == "alice"
        assert got["summary"] == "canary: production 80%, v2 20% (sticky header:x-user)"
        assert listing["version"] == 1  # the alias itself did not move

        traffic.clear("churn", actor="alice")
        shadow = traffic.shadow("churn", 2, actor="alice")
        got = (await refreshed(shadow.id))["traffic"]
        assert (got["kind"], got["arms"], got["shadow"]) == ("shadow", [], 2)

        split = traffic.split("churn", {None: 50, 2: 50}, actor="alice")
        got = (await refreshed(split.id))["traffic"]
        assert [(a["label"], a["version"]) for a in got["arms"]] == [
            ("production", 1),
            ("split:2", 2),
        ]
        assert got["shadow"] is None  # v2 answers now, so it no longer shadows

        traffic.clear("churn", actor="alice")
        assert (await refreshed(None))["traffic"] is None


async def wait_for_async(predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll an async predicate until it holds."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.02)
