"""Logging in and out: the login form (password), the account page, ``/api/me`` and the
admins' ``/api/users``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from shipyard.auth import Passwords, TooManyAttempts, Users
from shipyard.roles import ROLES
from shipyard.ui._context import ui_context
from shipyard.ui._render import render
from shipyard.ui._session import (
    Identity,
    admin,
    check_csrf,
    clear_session,
    set_session,
    viewer,
)

router = APIRouter()


class Me(BaseModel):
    """The caller."""

    name: str
    role: str
    via: Literal["session", "token", "header"]


class UserRow(BaseModel):
    """A listed user (never their password hash)."""

    name: str
    role: str
    email: str | None
    has_password: bool
    created_by: str
    created_at: datetime


#: What each role may do, in plain words (the account page).
ROLE_WORDS = {
    "viewer": "You can look at every model, its health, monitoring and audit trail.",
    "scientist": "You can also promote versions, start canaries and splits, roll back, "
    "acknowledge alerts and ask for approval.",
    "approver": "You can also approve or reject versions (never your own).",
    "admin": "You can do everything, and manage users and tokens from the command line.",
}

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
async def me(who: Annotated[Identity, Depends(viewer)]) -> Me:
    """The caller's user name, role and how they authenticated (``session``, ``token`` or
    ``header``)."""
    return Me(name=who.name, role=who.role, via=who.via)


@router.get("/ui/account", include_in_schema=False)
async def account(request: Request, who: Annotated[Identity, Depends(viewer)]) -> Response:
    return render(
        request,
        "account.html.j2",
        title="Your account",
        me=who,
        can=[ROLE_WORDS[r] for r in ROLES[: ROLES.index(who.role) + 1]],
    )


@router.get(
    "/api/users",
    tags=["identity"],
    summary="Users and their roles (admins only)",
    responses={401: {"description": "Not logged in"}, 403: {"description": "Not an admin"}},
)
def users(request: Request, who: Annotated[Identity, Depends(admin)]) -> list[UserRow]:
    """Every listed user with their role and e-mail address (anyone not listed acts as a
    scientist from the command line)."""
    rows = Users(ui_context(request).store).list_users()
    return [
        UserRow(
            name=u.name,
            role=u.role,
            email=u.email,
            has_password=u.password_hash is not None,
            created_by=u.created_by,
            created_at=u.created_at,
        )
        for u in rows
    ]
