"""``shipyard serve --ui``: the UI beside the model server, on one port.

``with_ui(serving_app, ui_app)`` is a small ASGI app sending ``/ui/...`` and ``/api/...``
requests to the UI and everything else (scoring, health, metrics, the lifespan) to the model
server. A path the model server itself routes stays the server's, so the UI can never shadow
a serving route.

>>> app = with_ui(create_app(store), create_ui(store))                 # doctest: +SKIP
>>> uvicorn.run(app, port=8000)                                        # doctest: +SKIP
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

#: The path prefixes the UI answers.
UI_PREFIXES = ("/ui", "/api")


def _ui_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in UI_PREFIXES)


class WithUi:
    """Route ``/ui`` and ``/api`` to ``ui``, the rest (and the lifespan) to ``serving``."""

    def __init__(self, serving: ASGIApp, ui: ASGIApp) -> None:
        self.serving = serving
        self.ui = ui

    def _serving_routes(self) -> list[BaseRoute]:
        router = getattr(self.serving, "router", None)
        return list(getattr(router, "routes", []))

    def serving_owns(self, scope: Scope) -> bool:
        """Whether the model server has a route for this request's path."""
        return any(route.matches(scope)[0] is not Match.NONE for route in self._serving_routes())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] in ("http", "websocket")
            and _ui_path(scope["path"])
            and not self.serving_owns(scope)
        ):
            await self.ui(scope, receive, send)
        else:
            await self.serving(scope, receive, send)


def with_ui(serving_app: ASGIApp, ui_app: ASGIApp) -> WithUi:
    """One ASGI app serving ``serving_app`` with ``ui_app``'s ``/ui`` and ``/api`` beside it."""
    return WithUi(serving_app, ui_app)
