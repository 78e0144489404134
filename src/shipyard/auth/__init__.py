"""Identity and access: users, roles (scientist, approver, admin)."""

from shipyard.auth._tokens import TOKEN_ROLES, Tokens, hash_token
from shipyard.auth._users import DEFAULT_ROLE, Users, can_approve, role_of
from shipyard.roles import ROLES

__all__ = [
    "DEFAULT_ROLE",
    "ROLES",
    "TOKEN_ROLES",
    "Tokens",
    "Users",
    "can_approve",
    "hash_token",
    "role_of",
]
