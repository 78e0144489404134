"""Logging in and out: the login form (password), ``/api/me``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from shipyard.auth import Passwords, TooManyAttempts
from shipyard.ui._context import ui_context
from shipyard.ui._render import render
from shipyard.ui._session import Identity, check_csrf, clear_session, set_session, viewer

router = APIRouter()

_REASONS = {
    "expired": "Your session has expired; log in again.",
    "login": "Log in to see this page.",
    "logout": "You are logged out.",
}


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of the UI on this server, else the catalogue.

    Never another host (``//evil.com``, ``https://...``, ``/\\evil.com``): no open redirect.

    >>> safe_next("/ui/models/churn?days=7"), safe_next("//evil.com"), safe_next("/ui\\\\x")
    ('/ui/models/churn?days=7', '/ui/', '/ui/')
    """
    if (
        target
        and (target == "/ui" or target.startswith(("/ui/", "/ui?")))
        and "\\" not in target
        and target.isprintable()
    ):
        return target
    return "/ui/"


def _login_page(
    request: Request, *, status: int = 200, next: str | None, message: str, error: str, user: str
) -> Response:
    return render(
        request,
        "login.html.j2",
        status=status,
        title="Log in",
        next=safe_next(next),
        message=message,
        error=error,
        user=user,
    )


@router.get("/ui/login", include_in_schema=False)
async def login_form(request: Request, next: str | None = None, reason: str = "") -> Response:
    return _login_page(request, next=next, message=_REASONS.get(reason, ""), error="", user="")


@router.post("/ui/login", include_in_schema=False)
async def login(
    request: Request,
    user: Annotated[str, Form(max_length=128)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/ui/",
) -> Response:
    await check_csrf(request)
    ctx = ui_context(request)
    address = request.client.host if request.client else "-"
    try:
        ctx.limiter.check(user, address)
    except TooManyAttempts as exc:
        return _login_page(
            request, status=exc.status, next=next, message="", error=exc.message, user=user
        )
    passwords = Passwords(ctx.store)
    role = await run_in_threadpool(passwords.check, user, password) if user else None
    fingerprint = await run_in_threadpool(passwords.fingerprint, user) if role else None
    if role is None or fingerprint is None:
        ctx.limiter.failed(user, address)
        return _login_page(
            request,
            status=401,
            next=next,
            message="",
            error="Wrong user name or password.",
            user=user,
        )
    ctx.limiter.succeeded(user, address)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session(response, ctx, user, fingerprint)
    return response


@router.post("/ui/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    await check_csrf(request)
    response = RedirectResponse("/ui/login?reason=logout", status_code=303)
    clear_session(response)
    return response


@router.get(
    "/api/me",
    tags=["identity"],
    summary="Who the caller is",
    responses={401: {"description": "Not logged in, or the token is unknown or revoked"}},
)
async def me(who: Annotated[Identity, Depends(viewer)]) -> dict[str, str]:
    """The caller's user name, role and how they authenticated (``session``, ``token`` or
    ``header``)."""
    return {"name": who.name, "role": who.role, "via": who.via}
