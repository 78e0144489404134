"""Logging in and out: the login form (password), ``/api/me``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from shipyard.auth import Passwords
from shipyard.ui._context import ui_context
from shipyard.ui._render import render
from shipyard.ui._session import Identity, check_csrf, clear_session, set_session, viewer

router = APIRouter()

_REASONS = {
    "expired": "Your session has expired; log in again.",
    "login": "Log in to see this page.",
    "logout": "You are logged out.",
}


def _safe_next(target: str | None) -> str:
    """Only a path on this server (never ``//host`` or ``https://...``): no open redirect."""
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return "/ui/"


@router.get("/ui/login", include_in_schema=False)
async def login_form(request: Request, next: str | None = None, reason: str = "") -> Response:
    return render(
        request,
        "login.html.j2",
        title="Log in",
        next=_safe_next(next),
        message=_REASONS.get(reason, ""),
        error="",
        user="",
    )


@router.post("/ui/login", include_in_schema=False)
async def login(
    request: Request,
    user: Annotated[str, Form(max_length=128)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/ui/",
) -> Response:
    await check_csrf(request)
    ctx = ui_context(request)
    passwords = Passwords(ctx.store)
    role = await run_in_threadpool(passwords.check, user, password) if user else None
    fingerprint = await run_in_threadpool(passwords.fingerprint, user) if role else None
    if role is None or fingerprint is None:
        return render(
            request,
            "login.html.j2",
            status=401,
            title="Log in",
            next=_safe_next(next),
            message="",
            error="Wrong user name or password.",
            user=user,
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session(response, ctx, user, fingerprint)
    return response


@router.post("/ui/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    await check_csrf(request)
    response = RedirectResponse("/ui/login?reason=logout", status_code=303)
    clear_session(response)
    return response


@router.get("/api/me", tags=["identity"], summary="Who the caller is")
async def me(who: Annotated[Identity, Depends(viewer)]) -> dict[str, str]:
    """The caller's user name, role and how they authenticated."""
    return {"name": who.name, "role": who.role, "via": who.via}
