"""Sizes, browsers and hosts: 413 on every scoring route (declared, chunked, gzip bombs, too
many rows) and on the web UI's API; CORS closed by default and open only to the origins
named; ``allowed_hosts`` refusing any other Host header, on a real uvicorn."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from security.conftest import Served
from serving.conftest import http
from shipyard.serving import create_app, serve_in_thread
from shipyard.settings import ServeSettings, UiSettings
from shipyard.ui import create_ui

pytestmark = pytest.mark.anyio

GOOD = {"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}
LIMIT = 4096
SETTINGS = ServeSettings(auth=False, max_body_bytes=LIMIT, max_batch_rows=5)


def _scoring_paths(app: Any) -> list[str]:
    """Every POST route of the model server, from its route list (a new one is covered)."""
    paths = []
    for route in app.routes:
        if isinstance(route, APIRoute) and "POST" in (route.methods or ()):
            paths.append(route.path.replace("{name}", "churn").replace("{version}", "1"))
    return paths


def _big_json(rows: int) -> bytes:
    import orjson

    return orjson.dumps({"records": [GOOD] * rows})


async def _chunks(data: bytes, size: int = 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_every_scoring_route_refuses_big_bodies_with_413(served: Served) -> None:
    app = create_app(served.store, settings=SETTINGS)
    paths = _scoring_paths(app)
    assert len(paths) >= 6, paths  # v2 infer, predict (both forms), feedback, invocations
    big = _big_json(200)  # ~15 KB, over the 4 KB limit
    bomb = gzip.compress(b'{"records": [' + b" " * (50 * LIMIT) + b"]}")
    deflated = zlib.compress(b" " * (50 * LIMIT))
    assert len(bomb) < LIMIT and len(deflated) < LIMIT  # small on the wire
    json = {"content-type": "application/json"}
    async with http(app) as client:
        for path in paths:
            for label, kwargs in (
                ("declared", {"content": big, "headers": json}),
                ("chunked", {"content": _chunks(big), "headers": json}),
                ("gzip bomb", {"content": bomb, "headers": json | {"content-encoding": "gzip"}}),
                (
                    "deflate",
                    {"content": deflated, "headers": json | {"content-encoding": "deflate"}},
                ),
            ):
                response = await client.post(path, **kwargs)
                assert response.status_code == 413, (path, label, response.text)
                assert response.json()["code"] == "PayloadTooLarge", (path, label)
        for path in ("/models/churn/predict", "/invocations"):
            rows = await client.post(
                path,
                json={"records": [GOOD] * 6}
                if "predict" in path
                else {"dataframe_records": [GOOD] * 6},
            )
            assert rows.status_code == 413 and "at most 5" in rows.json()["error"], rows.text
        v2 = {
            "inputs": [
                {
                    "name": k,
                    "shape": [6],
                    "datatype": "BYTES" if k == "plan" else "FP64",
                    "data": [v] * 6,
                }
                for k, v in GOOD.items()
            ]
        }
        rows = await client.post("/v2/models/churn/infer", json=v2)
        assert rows.status_code == 413, rows.text
        ok = await client.post("/models/churn/predict", json={"records": [GOOD] * 5})
        assert ok.status_code == 200  # at the limits is fine


async def test_the_ui_api_refuses_big_bodies_with_413(served: Served) -> None:
    ui = create_ui(served.store, settings=UiSettings(max_body_bytes=LIMIT))
    token = {"Authorization": f"Bearer {served.admin_token}"}
    path = "/api/models/churn/promote"
    big = b'{"version": 1, "reason": "' + b"x" * (2 * LIMIT) + b'"}'
    async with http(ui, **token) as client:
        declared = await client.post(
            path, content=big, headers={"content-type": "application/json"}
        )
        assert declared.status_code == 413 and declared.json()["code"] == "PayloadTooLarge"
        chunked = await client.post(
            path, content=_chunks(big), headers={"content-type": "application/json"}
        )
        assert chunked.status_code == 413, chunked.text
        form = await client.post("/ui/login", content=b"user=a&password=" + b"p" * (2 * LIMIT))
        assert form.status_code == 413
        small = await client.post(path, json={"version": 1, "reason": "ok"})
        assert small.status_code != 413  # refused or not for its content, never for its size


@pytest.fixture(scope="module")
def guarded(served: Served) -> Iterator[str]:
    """A real server answering only to ``models.example.com``, CORS open to one origin."""
    settings = ServeSettings(
        auth=False, allowed_hosts=("models.example.com",), cors_origins=("https://app.example.com",)
    )
    with serve_in_thread(create_app(served.store, settings=settings)) as url:
        yield url


async def test_cors_is_closed_by_default(served: Served) -> None:
    async with http(create_app(served.store, settings=ServeSettings(auth=False))) as client:
        preflight = await client.options(
            "/models/churn/predict",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 405
        answer = await client.post(
            "/models/churn/predict",
            json={"records": [GOOD]},
            headers={"Origin": "https://evil.example"},
        )
        assert answer.status_code == 200
        assert not any(h.startswith("access-control-") for h in answer.headers)
        assert not any(h.startswith("access-control-") for h in preflight.headers)


def test_cors_opens_to_the_named_origins_only(guarded: str) -> None:
    host = {"Host": "models.example.com"}
    with httpx.Client(base_url=guarded, headers=host) as client:

        def preflight(origin: str) -> httpx.Response:
            return client.options(
                "/models/churn/predict",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            )

        allowed = preflight("https://app.example.com")
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "access-control-allow-credentials" not in allowed.headers
        refused = preflight("https://evil.example")
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        answer = client.post(
            "/models/churn/predict",
            json={"records": [GOOD]},
            headers={"Origin": "https://app.example.com"},
        )
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "x-shipyard-version" in answer.headers["access-control-expose-headers"]


def test_allowed_hosts_refuses_other_host_headers(guarded: str) -> None:
    with httpx.Client(base_url=guarded) as client:
        for path, method in (
            ("/models/churn/predict", "POST"),
            ("/v2/health/ready", "GET"),
            ("/metrics", "GET"),
        ):
            kwargs: dict[str, Any] = {"json": {"records": [GOOD]}} if method == "POST" else {}
            good = client.request(method, path, headers={"Host": "models.example.com"}, **kwargs)
            assert good.status_code == 200, (path, good.text)
            for host in ("evil.example", "127.0.0.1", "models.example.com.evil.example"):
                bad = client.request(method, path, headers={"Host": host}, **kwargs)
                assert bad.status_code == 400, (path, host, bad.status_code)
