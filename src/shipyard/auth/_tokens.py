"""Bearer API tokens for the REST API.

A token is shown once, when created; the database keeps only its sha256, so a leaked
database does not leak usable tokens. Roles: ``scorer`` (may call the serving routes) and
``admin`` (may also call admin routes). Creating and revoking tokens is for admins only.

A token made for a ``user`` also opens the web UI's JSON API (``/api/``), where it acts as
that user with their role at the time of each call; a token without a user opens ``/api/``
only when its role is ``admin`` (as the admin ``token:<name>``).

>>> tokens = Tokens(store)  # doctest: +SKIP
>>> secret, row = tokens.create(role="scorer", name="web", actor="admin")  # doctest: +SKIP
>>> tokens.verify(secret).role  # doctest: +SKIP
'scorer'
>>> tokens.create(role="scorer", name="laptop", actor="admin", user="vera")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

from sqlalchemy import select

from shipyard.audit import append_event
from shipyard.auth._users import role_of
from shipyard.errors import InvalidInput, NotFound, PermissionDenied
from shipyard.roles import TOKEN_ROLES
from shipyard.store import Store
from shipyard.store.tables import ApiToken, User, utcnow

#: Every token starts with this, so secret scanners and humans recognise one.
TOKEN_PREFIX = "sy_"
#: A team name: it becomes a Prometheus label value and a column of the prediction log.
_TEAM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def hash_token(token: str) -> str:
    """The stored form of a token: its sha256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    """Create, list, verify and revoke API tokens in one ``Store``; changes are audited."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(
        self,
        *,
        role: str,
        name: str,
        actor: str,
        user: str | None = None,
        team: str | None = None,
    ) -> tuple[str, ApiToken]:
        """A new token (the secret, shown once) and its row. Only admins may create tokens;
        ``user`` (who must be listed) is the user the token acts for on ``/api/``; ``team``
        is whom its usage is charged to (``shipyard usage --by team``)."""
        if role not in TOKEN_ROLES:
            raise InvalidInput(
                f"Unknown token role '{role}'. Choose one of: {', '.join(TOKEN_ROLES)}."
            )
        if not name or len(name) > 128:
            raise InvalidInput("A token name must be 1 to 128 characters long.")
        if team is not None and not _TEAM.fullmatch(team):
            raise InvalidInput(
                "A team must be 1 to 128 letters, digits, '.', '_' or '-', starting with a "
                f"letter or digit. Got {team[:140]!r} instead."
            )
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.store.write() as session:
            if role_of(session, actor) != "admin":
                raise PermissionDenied(
                    f"'{actor}' cannot create API tokens: only admins can. Ask an admin "
                    "('shipyard users list' shows them)."
                )
            if user is not None and session.get(User, user) is None:
                raise NotFound(
                    f"There is no user '{user}'; give them a role first "
                    f"('shipyard users add {user} --role viewer')."
                )
            row = ApiToken(
                name=name,
                role=role,
                token_hash=hash_token(secret),
                created_at=utcnow(),
                created_by=actor,
                revoked_at=None,
                user=user,
                team=team,
            )
            session.add(row)
            session.flush()
            append_event(
                session,
                actor=actor,
                action="token.created",
                subject=f"token:{row.id}",
                details={"name": name, "role": role, "user": user, "team": team},
            )
        return secret, row

    def list_tokens(self) -> Sequence[ApiToken]:
        with self.store.read() as session:
            return session.scalars(select(ApiToken).order_by(ApiToken.id)).all()

    def verify(self, token: str) -> ApiToken | None:
        """The live (not revoked) token row for ``token``, or ``None``.

        The database finds the row by the token's sha256 (an index lookup on a hash the
        caller cannot steer byte by byte); the stored hash is then compared in constant time
        (``hmac.compare_digest``), so no comparison on the way leaks how much of a guess was
        right through its timing.
        """
        digest = hash_token(token)
        with self.store.read() as session:
            row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
        if row is None or not hmac.compare_digest(row.token_hash.encode(), digest.encode()):
            return None
        return row if row.revoked_at is None else None

    def revoke(self, token_id: int, *, actor: str) -> ApiToken:
        """Revoke a token by id; servers stop accepting it within their cache time."""
        with self.store.write() as session:
            if role_of(session, actor) != "admin":
                raise PermissionDenied(f"'{actor}' cannot revoke API tokens: only admins can.")
            row = session.get(ApiToken, token_id)
            if row is None:
                raise NotFound(
                    f"There is no API token {token_id}; 'shipyard tokens list' shows them."
                )
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                append_event(
                    session,
                    actor=actor,
                    action="token.revoked",
                    subject=f"token:{row.id}",
                    details={"name": row.name, "role": row.role},
                )
        return row
