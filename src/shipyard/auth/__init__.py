"""Identity and access: users, roles (viewer, scientist, approver, admin), API tokens, web
UI passwords (argon2) and the shared secret signing the UI's cookies."""

from shipyard.auth._passwords import Passwords, server_secret
from shipyard.auth._tokens import TOKEN_ROLES, Tokens, hash_token
from shipyard.auth._users import DEFAULT_ROLE, Users, can_approve, role_of
from shipyard.roles import ROLES

__all__ = [
    "DEFAULT_ROLE",
    "ROLES",
    "TOKEN_ROLES",
    "Passwords",
    "Tokens",
    "Users",
    "can_approve",
    "hash_token",
    "role_of",
    "server_secret",
]
