"""Users and roles.

Roles, from least to most trusted: ``viewer`` (only looks, in the web UI), ``scientist``
(tracks, registers: anyone not listed), ``approver`` (also approves versions), ``admin``
(also changes roles; implies approver). The user who creates a store is its first admin.
A user's e-mail address (``set_email``) is where digests go.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.audit import append_event
from shipyard.errors import InvalidInput, NotFound, PermissionDenied
from shipyard.roles import ROLES
from shipyard.store import Store
from shipyard.store.tables import User, utcnow

DEFAULT_ROLE = "scientist"
#: Enough to catch a typo (one "@", a dot in the domain, no spaces), not RFC 5322.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_EMAIL = 320


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

    def set_email(self, user: str, email: str, *, actor: str) -> None:
        """Set the e-mail address of ``user`` (digests go there; ``""`` removes it); admins
        set anyone's, a user their own."""
        email = email.strip()
        if email and (len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email)):
            raise InvalidInput(
                f"'{email[:100]}' is not an e-mail address; give one like name@example.com "
                f'(at most {MAX_EMAIL} characters), or "" to remove it.'
            )
        with self.store.write() as session:
            row = own_or_admin(session, user, actor=actor, what="e-mail address")
            previous = row.email
            row.email = email or None
            append_event(
                session,
                actor=actor,
                action="user.email_set",
                subject=f"user:{user}",
                details={"email": email or None, "previous": previous},
            )

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


def own_or_admin(session: Session, user: str, *, actor: str, what: str) -> User:
    """The row of ``user``, whose ``what`` ``actor`` may change: their own, or an admin."""
    if actor != user and role_of(session, actor) != "admin":
        raise PermissionDenied(
            f"'{actor}' cannot set the {what} of '{user}': only admins set another user's {what}."
        )
    row = session.get(User, user)
    if row is None:
        raise NotFound(
            f"There is no user '{user}'; give them a role first "
            f"('shipyard users add {user} --role viewer')."
        )
    return row


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
