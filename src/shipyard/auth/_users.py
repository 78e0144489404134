"""Users and roles.

Roles, from least to most trusted: ``scientist`` (tracks, registers: anyone not listed),
``approver`` (also approves versions), ``admin`` (also changes roles; implies approver).
The user who creates a store is its first admin.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.audit import append_event
from shipyard.errors import InvalidInput, NotFound, PermissionDenied
from shipyard.roles import ROLES
from shipyard.store import Store
from shipyard.store.tables import User, utcnow

DEFAULT_ROLE = "scientist"


def role_of(session: Session, user: str) -> str:
    """The role of ``user``: stored, or ``scientist`` for anyone not listed."""
    row = session.get(User, user)
    return row.role if row else DEFAULT_ROLE


def can_approve(role: str) -> bool:
    return role in ("approver", "admin")


class Users:
    """Role management for one store; every change is audited.

    >>> users = Users(store)  # doctest: +SKIP
    >>> users.set_role("bob", "approver", actor="admin")  # doctest: +SKIP
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def list_users(self) -> Sequence[User]:
        with self.store.read() as session:
            return session.scalars(select(User).order_by(User.name)).all()

    def role(self, user: str) -> str:
        with self.store.read() as session:
            return role_of(session, user)

    def set_role(self, user: str, role: str, *, actor: str) -> User:
        """Give ``user`` a role (creating the user); only admins may do this."""
        if role not in ROLES:
            raise InvalidInput(f"Unknown role '{role}'. Choose one of: {', '.join(ROLES)}.")
        if not user or len(user) > 128:
            raise InvalidInput("A user name must be 1 to 128 characters long.")
        with self.store.write() as session:
            _require_admin(session, actor, f"give '{user}' the role '{role}'")
            row = session.get(User, user)
            previous = row.role if row else None
            if row is None:
                row = User(name=user, role=role, created_at=utcnow(), created_by=actor)
                session.add(row)
            else:
                if previous == "admin" and role != "admin":
                    _keep_one_admin(session, user)
                row.role = role
            append_event(
                session,
                actor=actor,
                action="user.role_set",
                subject=f"user:{user}",
                details={"role": role, "previous": previous},
            )
        return row

    def remove(self, user: str, *, actor: str) -> None:
        """Remove ``user`` from the list (they act as a scientist again)."""
        with self.store.write() as session:
            _require_admin(session, actor, f"remove '{user}'")
            row = session.get(User, user)
            if row is None:
                raise NotFound(f"There is no user '{user}'. 'shipyard users list' shows them.")
            if row.role == "admin":
                _keep_one_admin(session, user)
            session.delete(row)
            append_event(
                session,
                actor=actor,
                action="user.removed",
                subject=f"user:{user}",
                details={"previous": row.role},
            )


def _require_admin(session: Session, actor: str, what: str) -> None:
    if role_of(session, actor) != "admin":
        raise PermissionDenied(
            f"'{actor}' cannot {what}: only admins change roles. Ask an admin "
            "('shipyard users list' shows them)."
        )


def _keep_one_admin(session: Session, leaving: str) -> None:
    others = session.scalars(
        select(User.name).where(User.role == "admin", User.name != leaving)
    ).first()
    if others is None:
        raise PermissionDenied(f"'{leaving}' is the last admin; make someone else an admin first.")
