"""Who is asking, and may they: session cookies, API tokens, a trusted proxy header, roles
and CSRF.

Three ways in, checked in this order on every request:

1. ``Authorization: Bearer <token>``: an API token made with ``shipyard tokens create --user``
   acts as that user with their role (an ``admin`` token without a user acts as the admin
   ``token:<name>``; a scoring token without a user is refused). Token requests skip CSRF: a
   browser never sends the header by itself.
2. ``--trusted-header``: the header a company proxy sets names the user (off by default); a
   user not listed in the database is a viewer.
3. The signed session cookie set by the login form (itsdangerous; it carries the user, a
   fingerprint of their password hash, so a new password ends old sessions, and the login
   time, so it expires ``session_hours`` later). Logging out deletes the cookie; the cookie is
   not remembered on the server, so a copy of it stays valid until it expires or the
   password changes.

The role is read from the database on every request, so a changed role counts at once.
Unsafe methods with a cookie session need the CSRF token: the double-submit cookie
``shipyard_csrf`` equal to the form field ``csrf_token`` or the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import Depends
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from shipyard.auth import Passwords, Tokens, role_of
from shipyard.errors import PermissionDenied, ShipyardError, Unauthorized
from shipyard.roles import ROLES
from shipyard.store.tables import User
from shipyard.ui._context import UiContext, ui_context

SESSION_COOKIE = "shipyard_session"
CSRF_COOKIE = "shipyard_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
#: A user not listed in the database but named by the trusted header only looks.
HEADER_DEFAULT_ROLE = "viewer"
MAX_NAME = 128

Via = Literal["session", "token", "header"]


@dataclass(frozen=True)
class Identity:
    """The user behind a request, their role now, and how they proved it."""

    name: str
    role: str
    via: Via

    def at_least(self, role: str) -> bool:
        """Whether this identity's role is ``role`` or a more trusted one."""
        return ROLES.index(self.role) >= ROLES.index(role)


class SessionExpired(Unauthorized):
    """The session cookie was valid once but is too old (the login page says so)."""


def _serializer(ctx: UiContext) -> URLSafeSerializer:
    return URLSafeSerializer(ctx.secret, salt="shipyard-ui-session")


def session_cookie(ctx: UiContext, user: str, fingerprint: str, *, now: float | None = None) -> str:
    """The signed cookie value of a new session for ``user``: the user, the fingerprint of
    their password hash and the time of login (``session_hours`` count from it)."""
    return _serializer(ctx).dumps({"u": user, "p": fingerprint, "t": now or time.time()})


def set_session(response: Response, ctx: UiContext, user: str, fingerprint: str) -> None:
    # No max-age: the browser keeps the cookie until it closes, and the server, which checks
    # the signed login time, says "expired" (rather than the browser silently forgetting).
    response.set_cookie(
        SESSION_COOKIE,
        session_cookie(ctx, user, fingerprint),
        httponly=True,
        samesite="lax",
        secure=ctx.settings.secure_cookies,
        path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def _identify(request: Request, ctx: UiContext) -> Identity | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return _token_identity(ctx, token.strip())
    if ctx.settings.trusted_header:
        name = request.headers.get(ctx.settings.trusted_header, "").strip()
        if name:
            return _header_identity(ctx, name)
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    return _session_identity(ctx, raw)


def _session_identity(ctx: UiContext, raw: str) -> Identity:
    try:
        data = _serializer(ctx).loads(raw)
    except BadSignature as exc:
        raise Unauthorized("Your session is not valid any more; log in again.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("t"), int | float):
        raise Unauthorized("Your session is not valid any more; log in again.")
    if time.time() - data["t"] > ctx.settings.session_hours * 3600:
        raise SessionExpired("Your session has expired; log in again.")
    user = str(data.get("u", ""))
    if not user or Passwords(ctx.store).fingerprint(user) != data.get("p"):
        raise Unauthorized("Your password was changed or removed; log in again.")
    with ctx.store.read() as session:
        role = role_of(session, user)
    return Identity(user, role, "session")


def _header_identity(ctx: UiContext, name: str) -> Identity:
    if len(name) > MAX_NAME or not name.isprintable():
        raise Unauthorized(
            f"The header {ctx.settings.trusted_header} does not name a user (at most "
            f"{MAX_NAME} printable characters)."
        )
    with ctx.store.read() as session:
        row = session.get(User, name)
        role = row.role if row is not None else HEADER_DEFAULT_ROLE
    return Identity(name, role, "header")


def _token_identity(ctx: UiContext, token: str) -> Identity:
    row = Tokens(ctx.store).verify(token)
    if row is None:
        raise Unauthorized("The API token is unknown or revoked; ask an admin for a new one.")
    if row.user:
        with ctx.store.read() as session:
            user = session.get(User, row.user)
            if user is None:
                raise Unauthorized(
                    f"The API token '{row.name}' acts for '{row.user}', who is no longer a "
                    "user; ask an admin for a new one."
                )
            return Identity(user.name, user.role, "token")
    if row.role == "admin":
        return Identity(f"token:{row.name}", "admin", "token")
    raise PermissionDenied(
        f"The API token '{row.name}' is a scoring token; the UI's API needs a token made for "
        "a user ('shipyard tokens create --role scorer --user NAME')."
    )


async def attach_identity(request: Request) -> None:
    """Put the caller on ``request.state.identity`` if they are logged in, else nothing (an
    error page still shows who is logged in, and never fails for it)."""
    if getattr(request.state, "identity", None) is not None:
        return
    try:
        request.state.identity = await run_in_threadpool(_identify, request, ui_context(request))
    except ShipyardError:
        request.state.identity = None


async def current_identity(request: Request) -> Identity:
    """Dependency: the caller, or ``Unauthorized`` (pages turn that into the login page)."""
    ctx = ui_context(request)
    found = await run_in_threadpool(_identify, request, ctx)
    if found is None:
        raise Unauthorized("Log in to see this page.")
    request.state.identity = found
    return found


def require(role: str) -> Callable[..., Awaitable[Identity]]:
    """Dependency factory: the caller, refused with 403 unless their role is at least
    ``role``; unsafe methods also pass the CSRF check.

    >>> @router.post("/x")                                            # doctest: +SKIP
    ... async def x(who: Identity = Depends(require("approver"))): ...
    """

    async def dependency(request: Request, who: Identity = Depends(current_identity)) -> Identity:
        if request.method not in ("GET", "HEAD", "OPTIONS") and who.via != "token":
            await check_csrf(request)
        if not who.at_least(role):
            raise PermissionDenied(
                f"'{who.name}' has the role '{who.role}'; this needs '{role}' or above. "
                "Ask an admin ('shipyard users add NAME --role ROLE')."
            )
        return who

    return dependency


viewer = require("viewer")
scientist = require("scientist")
approver = require("approver")
admin = require("admin")


def csrf_token(request: Request) -> str:
    """The CSRF token for forms on this page: the caller's ``shipyard_csrf`` cookie, or a new
    one (``ensure_csrf_cookie`` sets it on the response)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(24)
        request.state.new_csrf = token
    return token


def ensure_csrf_cookie(request: Request, response: Response) -> None:
    """Set the CSRF cookie when this request created its token."""
    new = getattr(request.state, "new_csrf", None)
    if new and not request.cookies.get(CSRF_COOKIE):
        ctx = ui_context(request)
        response.set_cookie(
            CSRF_COOKIE,
            new,
            httponly=True,
            samesite="strict",
            secure=ctx.settings.secure_cookies,
            path="/",
        )


async def check_csrf(request: Request) -> None:
    """Refuse (403) an unsafe request whose CSRF token is missing or not the cookie's."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else ""
    if not cookie or not sent or not hmac.compare_digest(cookie, sent):
        raise PermissionDenied(
            "The form's security token is missing or out of date (CSRF check); reload the "
            "page and try again."
        )
