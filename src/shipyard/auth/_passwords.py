"""Web UI passwords (argon2id, through argon2-cffi) and the shared secret that signs cookies.

Only an admin sets a password (users may change their own); the database keeps the argon2
hash. ``check_password`` costs the same whether or not the user exists, so response times do
not tell which names are real.

>>> passwords = Passwords(store)                                       # doctest: +SKIP
>>> passwords.set("bob", "correct horse battery", actor="admin")        # doctest: +SKIP
>>> passwords.check("bob", "correct horse battery")                     # doctest: +SKIP
'approver'
"""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from shipyard.audit import append_event
from shipyard.auth._users import own_or_admin
from shipyard.errors import InvalidInput
from shipyard.store import Store
from shipyard.store.tables import ServerSecret, User, utcnow

MIN_PASSWORD = 10
MAX_PASSWORD = 1024


@functools.cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


class Passwords:
    """Set and check the UI passwords of one store's users; setting one is audited."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def set(self, user: str, password: str, *, actor: str) -> None:
        """Give ``user`` (who must be listed: ``shipyard users add``) a password; only
        admins may set another user's password."""
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise InvalidInput(
                f"A password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long; "
                f"this one has {len(password)}."
            )
        hashed = _hasher().hash(password)
        with self.store.write() as session:
            row = own_or_admin(session, user, actor=actor, what="password")
            row.password_hash = hashed
            append_event(
                session, actor=actor, action="user.password_set", subject=f"user:{user}", details={}
            )

    def check(self, user: str, password: str) -> str | None:
        """The user's role when ``password`` is theirs, else ``None`` (same cost either way)."""
        with self.store.read() as session:
            row = session.get(User, user)
            stored = row.password_hash if row is not None else None
            role = row.role if row is not None else None
        try:
            _hasher().verify(stored or _dummy_hash(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return role if stored else None

    def fingerprint(self, user: str) -> str | None:
        """A short digest of the stored hash: sessions carry it, so setting a new password
        ends the user's other sessions. ``None`` when the user has no password."""
        import hashlib

        with self.store.read() as session:
            row = session.get(User, user)
            stored = row.password_hash if row is not None else None
        return hashlib.sha256(stored.encode()).hexdigest()[:16] if stored else None


def server_secret(store: Store, name: str) -> str:
    """The shared secret ``name``, created (random, 32 bytes) the first time it is asked for;
    every replica on the same database gets the same value."""
    with store.read() as session:
        row = session.get(ServerSecret, name)
        if row is not None:
            return row.value
    try:
        with store.write() as session:
            session.add(
                ServerSecret(name=name, value=secrets.token_urlsafe(32), created_at=utcnow())
            )
    except Exception:  # another replica created it first: read theirs
        pass
    with store.read() as session:
        row = session.get(ServerSecret, name)
        assert row is not None
        return row.value
