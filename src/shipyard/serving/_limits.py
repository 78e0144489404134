"""What a server lets in before any route runs: the Host header, browsers of other origins, and
the size of a request body.

``protect(app, settings)`` adds Starlette's ``TrustedHostMiddleware`` when
``settings.allowed_hosts`` is set (a request naming another host gets 400: DNS rebinding and
Host-header tricks stop here) and ``CORSMiddleware`` when ``settings.cors_origins`` is set.
Without them CORS stays closed: no ``Access-Control-Allow-*`` header is ever sent, so a page
on another origin can send a request but never read the answer, and a preflight fails. Both
are off by default so the scoring routes keep their short way in (``_fastroute``: any user
middleware sends every request through FastAPI's layers).

``BodyLimit`` refuses (413) a body over a limit whatever the route, before the route reads
it: by its ``Content-Length`` when declared, else by counting a chunked body as it arrives.
The scoring routes count their bodies themselves (``_inputs.read_body``, gzip included); the
web UI, whose JSON and form routes would read any body whole, is wrapped in it.

>>> settings = ServeSettings(allowed_hosts=("models.example.com",))
>>> app = protect(create_app(store), settings)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.settings import ServeSettings

A = TypeVar("A")


def protect(app: A, settings: ServeSettings) -> A:
    """``app`` (a Starlette/FastAPI app) with the host and CORS checks ``settings`` ask for."""
    add = app.add_middleware  # type: ignore[attr-defined]
    if settings.cors_origins:
        add(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "content-encoding"],
            expose_headers=["x-shipyard-version", "x-shipyard-model", "x-shipyard-arm"],
            allow_credentials=False,  # bearer tokens, never cookies, cross-origin
        )
    if settings.allowed_hosts:
        # added last, so it runs first: a request for another host is refused before CORS
        add(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts))
    return app


def _too_large(limit: int) -> tuple[Message, Message]:
    body = orjson.dumps(
        {
            "error": f"The request body is larger than this server's limit of {limit} bytes.",
            "code": "PayloadTooLarge",
        }
    )
    start = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``limit`` bytes, read no further."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, body = _too_large(self.limit)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await send(start)
            await send(body)
            return
        seen = 0
        over = False
        answered = False

        async def limited() -> Message:
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True  # the app sees a client that went away mid-body
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal answered
            if over:
                return  # whatever the app makes of the cut body, the answer is the 413
            answered = True
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if not over:
                raise
        if over and not answered:
            await send(start)
            await send(body)


def body_limited(app: Any, limit: int) -> Any:
    """``app`` behind ``BodyLimit`` (for Starlette/FastAPI: as its outermost user middleware)."""
    app.add_middleware(BodyLimit, limit=limit)
    return app
