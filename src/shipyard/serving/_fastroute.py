"""A short way in for the scoring routes: the same handlers, without the framework's layers.

FastAPI answers a request through about ten layers (error and exception middleware, an exit
stack, route matching against every route, parameter parsing and validation) that together
cost about as much as scoring one row with onnxruntime. ``ShipyardAPI`` is a FastAPI app that
recognises the scoring routes' paths itself and calls their handlers directly. Everything else
goes the usual way: other routes, other methods, a scoring route with a query string it does
not expect, and every request once user middleware is added (which must see every request).

The handlers are the ones FastAPI routes to (``app.add_api_route``), so the OpenAPI schema and
the answers are the same on both ways in; an exception a handler raises is answered by the
app's own exception handler for it (``app.add_exception_handler``), as FastAPI would.

On the short way in, a handler's ``Request`` reads its body straight from the ASGI messages
(``FastRequest.body``: one ``receive`` for a body that comes in one message, without
Starlette's stream generator), and a handler may answer with a ``RawResponse``, whose headers
come already encoded (``encode_headers``; the scoring routes keep theirs per model version and
arm), instead of a ``Response`` that encodes them for every answer.

The app can also take the interpreter's start-up heap out of garbage collection
(``freeze_heap``; ``shipyard serve`` turns it on). Once the models are loaded, the process
holds some 250,000 objects (pandas, scikit-learn, onnxruntime, pyarrow ...), and a full
collection walking them stalls every request for 50-150 ms, a few times a minute under
load; frozen, they are skipped, and p99 latency stops depending on the collector.

>>> app = ShipyardAPI()  # doctest: +SKIP
>>> app.add_api_route("/models/{name}/predict", predict, methods=["POST"])  # doctest: +SKIP
>>> app.add_fast_route("/models/{name}/predict", predict)  # doctest: +SKIP
"""

from __future__ import annotations

import gc
import inspect
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

#: Response headers as the ASGI server takes them: (lower-case name, value) in latin-1.
RawHeaders = list[tuple[bytes, bytes]]

#: handler(request, name, version) -> response; ``name`` is "" for routes without one.
FastHandler = Callable[[Request, str, str | None], Awaitable[Response]]
_PARAMS = ("{name}", "{version}")


@dataclass(frozen=True)
class _Route:
    parts: tuple[str, ...]  # the path split on "/", parameters as "{name}" / "{version}"
    handler: FastHandler
    query: bool  # whether a query string may come along (False: leave such requests to FastAPI)


class ShipyardAPI(FastAPI):
    """FastAPI with a direct path to the POST routes registered with ``add_fast_route``."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._fast: dict[int, list[_Route]] = {}
        #: Freeze the heap (``gc.freeze``) once the app has started (its models loaded).
        self.freeze_heap = False

    def add_fast_route(self, path: str, handler: FastHandler, *, query: bool = True) -> None:
        """Answer POSTs to ``path`` (parameters ``{name}``, ``{version}``) with ``handler``."""
        parts = tuple(path.split("/"))
        unknown = [p for p in parts if p.startswith("{") and p not in _PARAMS]
        if unknown:
            raise ValueError(f"Fast routes take {{name}} and {{version}} only, not {unknown}.")
        self._fast.setdefault(len(parts), []).append(_Route(parts, handler, query))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self.freeze_heap:
            await super().__call__(scope, receive, _freezing(send))
            return
        if scope["type"] == "http" and scope["method"] == "POST" and not self.user_middleware:
            found = self._match(scope)
            if found is not None:
                route, name, version = found
                if self.root_path:
                    scope["root_path"] = self.root_path
                scope["app"] = self
                await self._answer(route.handler, scope, receive, send, name, version)
                return
        await super().__call__(scope, receive, send)

    def _match(self, scope: Scope) -> tuple[_Route, str, str | None] | None:
        path: str = scope["path"]
        root = self.root_path or scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        parts = path.split("/")
        for route in self._fast.get(len(parts), ()):
            if scope.get("query_string") and not route.query:
                continue
            name, version, ok = "", None, True
            for want, got in zip(route.parts, parts, strict=True):
                if want == "{name}":
                    name = got
                elif want == "{version}":
                    version = got
                elif want != got:
                    ok = False
                    break
            if ok and (name or "{name}" not in route.parts) and version != "":
                return route, name, version
        return None

    async def _answer(
        self,
        handler: FastHandler,
        scope: Scope,
        receive: Receive,
        send: Send,
        name: str,
        version: str | None,
    ) -> None:
        request = FastRequest(scope, receive, send)
        try:
            response = await handler(request, name, version)
        except Exception as exc:
            on_error = self._exception_handler(exc)
            if on_error is None:
                raise
            answer: Any = on_error(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)

    def _exception_handler(self, exc: Exception) -> Callable[..., Any] | None:
        """The app's handler for ``exc``: the nearest registered class in its MRO."""
        for cls in type(exc).__mro__:
            handler = self.exception_handlers.get(cls)
            if handler is not None:
                return handler
        return None


class FastRequest(Request):
    """A ``Request`` whose ``body()`` reads the ASGI messages itself.

    Starlette's ``body()`` runs an async generator (``stream()``) inside ``aclosing``, which
    costs more than the one ``receive`` that brings a small body. The result is the same:
    the bytes, kept for later calls (``stream()`` then yields them), and ``ClientDisconnect``
    if the client goes away first.
    """

    async def body(self) -> bytes:
        try:
            return self._body
        except AttributeError:
            pass
        if getattr(self, "_stream_consumed", False):  # stream() was read, bytes not kept
            return await super().body()  # raises "Stream consumed", as Starlette does
        receive = self.receive
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                if chunk:
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            elif message["type"] == "http.disconnect":
                self._is_disconnected = True
                raise ClientDisconnect()
        self._stream_consumed = True
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._body = body
        return body


class RawResponse(Response):
    """A ``Response`` built from its body and already encoded headers.

    ``Response.__init__`` lower-cases and encodes every header of every answer and scans them
    for content length and type; here the caller passes the final list (``encode_headers``),
    content length and type included.
    """

    def __init__(self, body: bytes, headers: RawHeaders, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = headers


def encode_headers(headers: dict[str, str]) -> RawHeaders:
    """``headers`` as a ``RawResponse`` takes them, as ``Response`` would encode them."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


def _freezing(send: Send) -> Send:
    """``send`` that freezes the heap when the app reports its start-up complete."""

    async def wrapped(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            gc.collect()  # what is garbage now is not kept forever
            gc.freeze()
        await send(message)

    return wrapped
