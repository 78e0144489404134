"""The user roles, from least to most trusted, and the API token roles (see ``shipyard.auth``).

Kept apart from ``shipyard.auth``, which loads the store (SQLAlchemy, Alembic), so that the
CLI can name the roles in its help without that cost.
"""

#: ``viewer`` only looks (business users in the web UI); ``scientist`` also tracks, registers
#: and moves traffic; ``approver`` also approves; ``admin`` also manages users and tokens.
ROLES = ("viewer", "scientist", "approver", "admin")

TOKEN_ROLES = ("scorer", "admin")

__all__ = ["ROLES", "TOKEN_ROLES"]
