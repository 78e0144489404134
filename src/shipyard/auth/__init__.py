"""Identity and access: users, roles (scientist, approver, admin)."""

from shipyard.auth._users import DEFAULT_ROLE, ROLES, Users, can_approve, role_of

__all__ = ["DEFAULT_ROLE", "ROLES", "Users", "can_approve", "role_of"]
