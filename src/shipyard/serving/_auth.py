"""Bearer-token checks on the request path, with a short cache in front of the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import NamedTuple

from starlette.requests import Request

from shipyard.auth import Tokens, hash_token
from shipyard.errors import PermissionDenied, Unauthorized
from shipyard.settings import ServeSettings
from shipyard.store import Store

SCORER_ROLES = frozenset({"scorer", "admin"})
ADMIN_ROLES = frozenset({"admin"})
#: Beyond this many cached tokens the cache starts over, so a flood of made-up tokens
#: cannot grow memory without bound.
_MAX_CACHED = 10_000


class Caller(NamedTuple):
    """Who called: the token's role, name and team (what usage is charged to)."""

    role: str
    name: str
    team: str | None


class TokenGate:
    """Checks ``Authorization: Bearer <token>`` (an HTTP header, or gRPC metadata
    ``authorization``) against the store's API tokens.

    A verdict (valid with a role, or invalid) is cached for ``token_cache_seconds``, so a
    revoked token stops working within that time and a hot client costs no query.
    """

    def __init__(self, store: Store, settings: ServeSettings) -> None:
        self.tokens = Tokens(store)
        self.enabled = settings.auth
        self.ttl = settings.token_cache_seconds
        self._cache: dict[str, tuple[Caller | None, float]] = {}

    async def check(self, request: Request, roles: frozenset[str] = SCORER_ROLES) -> Caller | None:
        """The caller (``None`` with auth off); raises 401 without a valid token, 403 with the
        wrong role."""
        return await self.check_headers(request.headers, roles)

    async def check_headers(
        self, headers: Mapping[str, str], roles: frozenset[str] = SCORER_ROLES
    ) -> Caller | None:
        """``check`` on any transport's headers (lower-case keys: HTTP headers, gRPC metadata)."""
        if not self.enabled:
            return None
        header = headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "This server needs an API token: send 'Authorization: Bearer <token>' "
                "(an admin creates one with 'shipyard tokens create --role scorer')."
            )
        key = hash_token(token.strip())
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is None or cached[1] < now:
            row = await asyncio.to_thread(self.tokens.verify, token.strip())
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            caller = Caller(row.role, row.name, row.team) if row is not None else None
            cached = (caller, now + self.ttl)
            self._cache[key] = cached
        found = cached[0]
        if found is None:
            raise Unauthorized(
                "The API token is unknown or revoked; ask an admin for a new one "
                "('shipyard tokens create --role scorer')."
            )
        if found.role not in roles:
            raise PermissionDenied(
                f"This API token has the role '{found.role}'; this route needs one of: "
                f"{', '.join(sorted(roles))}."
            )
        return found
