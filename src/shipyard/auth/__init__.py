"""Identity and access: users, roles (viewer, scientist, approver, admin), API tokens, web
UI passwords (argon2), the shared secret signing the UI's cookies, and the limit on failed
logins."""

from shipyard.auth._limiter import LoginLimiter, TooManyAttempts
from shipyard.auth._passwords import MIN_PASSWORD, Passwords, server_secret
from shipyard.auth._tokens import TOKEN_ROLES, Tokens, hash_token
from shipyard.auth._users import DEFAULT_ROLE, Users, can_approve, role_of
from shipyard.roles import ROLES

__all__ = [
    "DEFAULT_ROLE",
    "MIN_PASSWORD",
    "ROLES",
    "TOKEN_ROLES",
    "LoginLimiter",
    "Passwords",
    "Tokens",
    "TooManyAttempts",
    "Users",
    "can_approve",
    "hash_token",
    "role_of",
    "server_secret",
]
