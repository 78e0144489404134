"""Identity and access: users, roles (viewer, scientist, approver, admin), API tokens, web
UI passwords (argon2), the shared secret signing the UI's cookies, the limit on failed
logins, and per-token request rate limits (in memory, or shared through Redis)."""

from shipyard.auth._limiter import LoginLimiter, TooManyAttempts
from shipyard.auth._passwords import MIN_PASSWORD, Passwords, server_secret
from shipyard.auth._ratelimit import (
    MemoryRateLimiter,
    Rate,
    RateLimiter,
    RedisRateLimiter,
    rate_limiter,
    too_many,
)
from shipyard.auth._tokens import TOKEN_ROLES, Tokens, hash_token
from shipyard.auth._users import DEFAULT_ROLE, Users, can_approve, role_of
from shipyard.roles import ROLES

__all__ = [
    "DEFAULT_ROLE",
    "MIN_PASSWORD",
    "ROLES",
    "TOKEN_ROLES",
    "LoginLimiter",
    "MemoryRateLimiter",
    "Passwords",
    "Rate",
    "RateLimiter",
    "RedisRateLimiter",
    "Tokens",
    "TooManyAttempts",
    "Users",
    "can_approve",
    "hash_token",
    "rate_limiter",
    "role_of",
    "server_secret",
    "too_many",
]
