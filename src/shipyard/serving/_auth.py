"""Bearer-token checks on the request path, with a short cache in front of the database, and
the per-token rate limit (``ServeSettings.rate_limit``) checked once the token is known."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import NamedTuple

from starlette.requests import Request

from shipyard.auth import RateLimiter, Tokens, hash_token, rate_limiter, too_many
from shipyard.errors import PermissionDenied, Unauthorized
from shipyard.settings import ServeSettings
from shipyard.store import Store, database_unreachable

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

    With a rate limit, each token (by its hash) has its own budget, counted after the token is
    verified (nobody spends another's budget without holding it); without auth every caller
    shares one budget. Over it, ``TooManyRequests`` (429, ``Retry-After``).
    """

    def __init__(self, store: Store, settings: ServeSettings) -> None:
        self.tokens = Tokens(store)
        self.enabled = settings.auth
        self.ttl = settings.token_cache_seconds
        self.limiter: RateLimiter | None = rate_limiter(
            settings.rate_limit, settings.rate_limit_redis_url
        )
        self._cache: dict[str, tuple[Caller | None, float]] = {}

    async def close(self) -> None:
        """Close the rate limiter's connection (Redis), if any."""
        if self.limiter is not None:
            await self.limiter.close()

    async def _limit(self, key: str) -> None:
        if self.limiter is None:
            return
        wait = await self.limiter.check(key)
        if wait is not None:
            raise too_many(wait, self.limiter.rate)

    async def _verify(
        self,
        key: str,
        token: str,
        cached: tuple[Caller | None, float] | None,
        now: float,
    ) -> tuple[Caller | None, float]:
        """Ask the database about a token. While the database cannot be reached (a restart, a
        failover), a token it knew keeps its last verdict: the loaded models keep answering
        their callers, and the database is asked again after the next ``ttl``."""
        try:
            row = await asyncio.to_thread(self.tokens.verify, token)
        except Exception as exc:
            if cached is None or database_unreachable(exc) is None:
                raise
            fresh = (cached[0], now + self.ttl)
        else:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            fresh = (
                Caller(row.role, row.name, row.team) if row is not None else None,
                now + self.ttl,
            )
        self._cache[key] = fresh
        return fresh

    async def check(self, request: Request, roles: frozenset[str] = SCORER_ROLES) -> Caller | None:
        """The caller (``None`` with auth off); raises 401 without a valid token, 403 with the
        wrong role."""
        return await self.check_headers(request.headers, roles)

    async def check_headers(
        self, headers: Mapping[str, str], roles: frozenset[str] = SCORER_ROLES
    ) -> Caller | None:
        """``check`` on any transport's headers (lower-case keys: HTTP headers, gRPC metadata)."""
        if not self.enabled:
            await self._limit("anonymous")
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
            cached = await self._verify(key, token.strip(), cached, now)
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
        # by the token's hash: unique across stores sharing one Redis, and never the secret
        await self._limit(f"token:{key[:32]}")
        return found
