"""The scoring routes' short way in: ``FastRequest`` bodies and ``RawResponse`` answers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from shipyard.serving._fastroute import FastRequest, RawResponse, encode_headers

SCOPE = {"type": "http", "method": "POST", "path": "/", "headers": []}


def receiving(*messages: dict[str, Any]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def body_of(*messages: dict[str, Any]) -> tuple[bytes, bytes]:
    """The body ``FastRequest`` reads from ``messages``, then what ``stream()`` yields."""

    async def read() -> tuple[bytes, bytes]:
        request = FastRequest(SCOPE, receiving(*messages))
        body = await request.body()
        assert await request.body() is body  # kept
        return body, b"".join([chunk async for chunk in request.stream()])

    return asyncio.run(read())


def test_a_body_in_one_message() -> None:
    assert body_of({"type": "http.request", "body": b'{"a": 1}'}) == (b'{"a": 1}', b'{"a": 1}')


def test_a_body_in_several_messages_is_joined() -> None:
    parts = [b"ab", b"", b"cd", b"e"]
    messages = [{"type": "http.request", "body": p, "more_body": True} for p in parts]
    messages.append({"type": "http.request", "body": b"", "more_body": False})
    assert body_of(*messages) == (b"abcde", b"abcde")


def test_an_empty_body() -> None:
    assert body_of({"type": "http.request"}) == (b"", b"")


def test_a_client_that_leaves_mid_body_is_a_client_disconnect() -> None:
    async def read() -> FastRequest:
        request = FastRequest(
            SCOPE,
            receiving(
                {"type": "http.request", "body": b"ab", "more_body": True},
                {"type": "http.disconnect"},
            ),
        )
        with pytest.raises(ClientDisconnect):
            await request.body()
        return request

    assert asyncio.run(read())._is_disconnected


def test_raw_responses_send_what_a_response_sends() -> None:
    headers = {"X-Shipyard-Version": "3", "X-Shipyard-Model": "churn"}
    body = b'{"ok":true}'
    sent: dict[str, list[Any]] = {"plain": [], "raw": []}

    async def answer(response: Response, into: list[Any]) -> None:
        async def send(message: Any) -> None:
            into.append(message)

        await response(SCOPE, receiving(), send)

    raw_headers = encode_headers(headers)
    raw_headers += [(b"content-length", b"11"), (b"content-type", b"application/json")]
    asyncio.run(answer(Response(body, 200, headers, "application/json"), sent["plain"]))
    asyncio.run(answer(RawResponse(body, raw_headers), sent["raw"]))

    assert sent["raw"] == sent["plain"]
