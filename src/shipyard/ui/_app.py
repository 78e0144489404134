"""The web UI's app: pages under ``/ui/``, their JSON twins under ``/api/``, one set of roles.

``create_ui`` builds it; ``shipyard ui`` serves it alone and ``shipyard serve --ui`` puts it
beside the model server (``with_ui``). Every response carries a strict Content-Security-Policy:
scripts, styles and images come from this server only (plotly.js and the page script are
bundled in the package), so a name or label with HTML in it can never run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from shipyard.auth import server_secret
from shipyard.config import ProjectConfig
from shipyard.errors import ShipyardError, Unauthorized
from shipyard.settings import UiSettings
from shipyard.store import Store
from shipyard.ui import _routes
from shipyard.ui._context import UiContext
from shipyard.ui._render import render
from shipyard.ui._session import SessionExpired, attach_identity

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


def create_ui(
    store: Store,
    *,
    project: ProjectConfig | None = None,
    settings: UiSettings | None = None,
    predlog: Path | None = None,
) -> FastAPI:
    """The UI app over ``store``; ``predlog`` is the prediction log folder (for tracing and
    sample rows; ``None``: those pages say there is no log).

    >>> app = create_ui(store)                                          # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8600)                    # doctest: +SKIP
    """
    settings = settings or UiSettings()
    app = FastAPI(
        title="Shipyard UI API",
        description="Everything the web UI shows and does, as JSON, with the same roles: "
        "send 'Authorization: Bearer <token>' (shipyard tokens create --user NAME).",
        # The schema sits under /api so that `shipyard serve --ui` keeps the model server's
        # /openapi.json; no /docs page (FastAPI's loads its scripts from a CDN).
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.ui = UiContext(
        store=store,
        project=project or ProjectConfig(),
        settings=settings,
        predlog=predlog,
        secret=settings.secret or server_secret(store, "ui-session"),
    )
    app.add_api_route("/", _home, include_in_schema=False)
    for router in _routes.ROUTERS:
        app.include_router(router)
    static = files("shipyard.ui") / "static"
    app.mount("/ui/static", StaticFiles(directory=str(static)), name="static")
    app.add_exception_handler(ShipyardError, _shipyard_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.middleware("http")(_security_headers)
    from shipyard.serving import body_limited  # the model server's modules load on use only

    return body_limited(app, settings.max_body_bytes)


async def _home() -> Response:
    return RedirectResponse("/ui/", status_code=307)


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.url.path.startswith(("/ui", "/api")) and not request.url.path.startswith(
        "/ui/static"
    ):
        response.headers.setdefault("cache-control", "no-store")
    return response


_TITLES = {
    400: "That input was not valid",
    401: "Please log in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "Changed meanwhile",
    429: "Too many attempts",
}


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api")


async def error_response(request: Request, status: int, message: str) -> Response:
    """The one error shape: ``{"error": message}`` under /api, the error page elsewhere."""
    if is_api(request):
        return JSONResponse({"error": message}, status_code=status)
    await attach_identity(request)
    return render(
        request, "error.html.j2", status=status, title=_TITLES.get(status, "Error"), message=message
    )


async def _shipyard_error(request: Request, exc: ShipyardError) -> Response:
    if isinstance(exc, Unauthorized) and not is_api(request) and request.method == "GET":
        reason = "expired" if isinstance(exc, SessionExpired) else "login"
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/ui/login?next={target}&reason={reason}", status_code=303)
    return await error_response(request, exc.status, exc.message)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        problems.append(f"{where or 'input'}: {error.get('msg', 'invalid')}")
    return await error_response(request, 400, "Invalid input. " + "; ".join(problems) + ".")


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    message = exc.detail if isinstance(exc.detail, str) else "Request refused."
    if exc.status_code == 404:
        message = f"There is no page at {request.url.path}."
    return await error_response(request, exc.status_code, message)
