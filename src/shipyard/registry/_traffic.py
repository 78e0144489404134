"""Traffic policies: canary, A/B split and shadow, kept append-only in ``traffic_policies``.

The newest row of a model rules; a row with no arms and no shadow ends the policy. Each arm
is ``{"version": int | None, "weight": percent}``; ``None`` is whatever version the served
alias points to, so a canary's base follows a rollback.

Rules, checked under the model's row lock (the same lock promotions take):

- a version that *answers* traffic (a canary or split arm) needs the same four-eyes approval
  as a promotion to production; a shadow does not (its answers are never returned);
- versions must exist and not be archived; a canary needs a production version and must be
  another version; weights are in (0, 100] and sum to 100;
- ``sticky`` is ``header:<name>`` or ``field:<column>``: requests with the same key see the
  same version (see ``shipyard.serving._routing``).

Interplay with the alias (decided here, documented in the README):

- promoting a version to production ends any canary or split (``traffic.cleared``, cause
  ``promotion``); a shadow of another version stays, a shadow of the promoted one ends;
- ``Traffic.rollback`` (what ``shipyard rollback`` runs) ends an active canary or split
  instead of moving the alias; with none, it rolls the alias back as before. The lower level
  ``Registry.rollback`` refuses while a canary or split is active, so an alias never moves
  under a running experiment by accident.

>>> traffic = Traffic(store)  # doctest: +SKIP
>>> traffic.canary("churn", 4, 10, actor="carol", sticky="header:X-User")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.config import ProjectConfig
from shipyard.errors import InvalidInput, InvalidTransition
from shipyard.registry._entities import AliasChange
from shipyard.registry._gates import require_gates
from shipyard.registry._policy import (
    Arm,
    Policy,
    active_policy,
    append_policy,
    arm_name,
    check_expected_policy,
    end_policy,
)
from shipyard.registry._queries import (
    check_expected_alias,
    lock_model,
    model_row,
    require_approval,
    version_row,
)
from shipyard.registry._refs import PRODUCTION
from shipyard.registry._registry import Registry
from shipyard.store import Store
from shipyard.store.tables import Alias, ModelVersion, TrafficPolicy

_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")  # an HTTP token (RFC 9110)
_WEIGHT_SLACK = 1e-6


@dataclass(frozen=True)
class RollbackOutcome:
    """What ``Traffic.rollback`` did: ended a policy (``previous``, now ``ended``), or moved
    the alias back (``change``)."""

    ended: Policy | None = None
    previous: Policy | None = None
    change: AliasChange | None = None


def check_sticky(sticky: str | None) -> str | None:
    """``header:<name>`` or ``field:<column>`` (or ``None``); raises ``InvalidInput``."""
    if sticky is None:
        return None
    kind, sep, key = sticky.partition(":")
    kind = kind.strip().lower()
    key = key.strip()
    if not sep or kind not in ("header", "field") or not key:
        raise InvalidInput(
            f"Sticky routing '{sticky[:80]}' is not understood: write header:<name> (e.g. "
            "header:X-User-Id) or field:<column> (e.g. field:customer_id)."
        )
    if kind == "header" and not _HEADER.match(key):
        raise InvalidInput(
            f"'{key[:80]}' is not a valid HTTP header name: use letters, digits and '-'."
        )
    if kind == "field" and (len(key) > 128 or any(ord(c) < 32 for c in key)):
        raise InvalidInput("A sticky field must be a column name of at most 128 characters.")
    return f"{kind}:{key.lower() if kind == 'header' else key}"


def parse_weights(items: list[str]) -> dict[int | None, float]:
    """``["3=50", "4=50"]`` (or ``production=50``) → ``{3: 50.0, 4: 50.0}``."""
    out: dict[int | None, float] = {}
    for item in items:
        left, sep, right = item.partition("=")
        left, right = left.strip().lower().lstrip("v"), right.strip().rstrip("%")
        if not sep or not left or not right:
            raise InvalidInput(f"'{item[:40]}' is not VERSION=PERCENT: write e.g. 3=50 4=50.")
        if left == "production":
            version: int | None = None
        elif left.isascii() and left.isdigit() and int(left) > 0:
            version = int(left)
        else:
            raise InvalidInput(f"'{item[:40]}': '{left[:20]}' is not a version number.")
        try:
            weight = float(right)
        except ValueError:
            raise InvalidInput(
                f"'{item[:40]}': '{right[:20]}' is not a percentage (e.g. 3=50)."
            ) from None
        if not math.isfinite(weight):
            raise InvalidInput(f"'{item[:40]}': the percentage must be a finite number.")
        if version in out:
            raise InvalidInput(f"'{item[:40]}' names a version given twice.")
        out[version] = weight
    return out


def check_weight(weight: float, what: str) -> float:
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise InvalidInput(f"The weight of {what} must be a number of percent.")
    if not math.isfinite(weight) or not 0 < weight <= 100:
        raise InvalidInput(
            f"The weight of {what} is {weight:g}%; each weight must be above 0 and at most 100."
        )
    return float(weight)


class Traffic:
    """Canary, split and shadow policies of models in one ``Store``; every change audited."""

    def __init__(self, store: Store, project: ProjectConfig | None = None) -> None:
        self.store = store
        self.project = project
        self.registry = Registry(store, project)

    # -- reading ---------------------------------------------------------------------------
    def current(self, name: str) -> Policy | None:
        """The policy in force for ``name``, or ``None``."""
        with self.store.read() as session:
            model_row(session, name)
            return active_policy(session, name)

    def history(self, name: str, limit: int | None = None) -> list[Policy]:
        """Every policy change of ``name``, newest first (ends included)."""
        with self.store.read() as session:
            model_row(session, name)
            query = (
                select(TrafficPolicy)
                .where(TrafficPolicy.model_name == name)
                .order_by(TrafficPolicy.id.desc())
            )
            if limit is not None:
                query = query.limit(limit)
            return [Policy.from_row(r) for r in session.scalars(query)]

    # -- writing ---------------------------------------------------------------------------
    def canary(
        self,
        name: str,
        version: int,
        percent: float,
        *,
        actor: str,
        sticky: str | None = None,
        reason: str = "",
        force: bool = False,
        expected_policy: int | None = None,
    ) -> Policy:
        """Send ``percent`` % of ``name``'s requests to ``version``, the rest to production.

        A shadow already in force stays (unless it is ``version``, which now answers). The
        version needs an approval and a passing gate record (``force``: an admin overrides
        the gates, with ``reason``).
        """
        percent = check_weight(percent, f"the canary v{version}")
        if percent >= 100:
            raise InvalidInput(
                "A canary takes less than 100% of the traffic; to send everything to "
                f"v{version}, promote it: shipyard promote {name} {version}."
            )
        sticky = check_sticky(sticky)
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            check_expected_policy(session, name, expected_policy)
            return self._canary(session, name, version, percent, actor, sticky, reason, force=force)

    def _canary(
        self,
        session: Session,
        name: str,
        version: int,
        percent: float,
        actor: str,
        sticky: str | None,
        reason: str,
        *,
        force: bool = False,
    ) -> Policy:
        """``canary`` in the caller's write transaction (``Rollouts`` steps a canary and its
        own row in one); ``percent`` and ``sticky`` are checked already."""
        lock_model(session, name, actor=actor)
        production = _production(session, name)
        if production is None:
            raise InvalidTransition(
                f"{name} has no production version for a canary to share traffic with; "
                f"promote one first (shipyard promote {name} N)."
            )
        self._answering_version(session, name, version, actor, reason if force else None)
        if version == production:
            raise InvalidTransition(
                f"v{version} is already {name}'s production version; a canary must be "
                "another version."
            )
        previous = active_policy(session, name)
        shadow = previous.shadow if previous is not None else None
        if shadow == version:
            shadow = None
        arms = (Arm(None, round(100 - percent, 6)), Arm(version, percent))
        return append_policy(
            session,
            name,
            "canary",
            arms,
            shadow,
            sticky,
            actor,
            reason,
            details={"version": version, "percent": percent, "production": production},
        )

    def split(
        self,
        name: str,
        weights: Mapping[int | None, float],
        *,
        actor: str,
        sticky: str | None = None,
        reason: str = "",
        force: bool = False,
        expected_policy: int | None = None,
    ) -> Policy:
        """A/B(/n) test: each version (``None``: production) answers its percent of requests.

        Every version but production needs an approval and a passing gate record (``force``:
        an admin overrides the gates, with ``reason``)."""
        if len(weights) < 2:
            raise InvalidInput(
                "A split needs at least two versions, e.g. 3=50 4=50; to send everything to "
                "one version, promote it."
            )
        arms = tuple(Arm(v, check_weight(w, arm_name(v))) for v, w in weights.items())
        total = sum(a.weight for a in arms)
        if abs(total - 100) > _WEIGHT_SLACK * 100:
            raise InvalidInput(
                f"The split weights sum to {total:g}%, not 100%: e.g. 3=50 4=50 or 3=90 4=10."
            )
        sticky = check_sticky(sticky)
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            check_expected_policy(session, name, expected_policy)
            production = _production(session, name)
            resolved: set[int | None] = set()
            for arm in arms:
                if arm.version is None:
                    if production is None:
                        raise InvalidTransition(
                            f"{name} has no production version to give a share of the split."
                        )
                    resolved.add(production)
                    continue
                if arm.version == production:
                    _answering_version(session, name, arm.version)
                else:
                    self._answering_version(
                        session, name, arm.version, actor, reason if force else None
                    )
                resolved.add(arm.version)
            if len(resolved) < len(arms):
                raise InvalidInput(
                    "The split names the same version twice (production is "
                    f"v{production}); give each version once."
                )
            previous = active_policy(session, name)
            shadow = previous.shadow if previous is not None else None
            if shadow in resolved:
                shadow = None
            return append_policy(
                session,
                name,
                "split",
                arms,
                shadow,
                sticky,
                actor,
                reason,
                details={"weights": {arm_name(a.version): a.weight for a in arms}},
            )

    def shadow(self, name: str, version: int, *, actor: str, reason: str = "") -> Policy:
        """Mirror every request of ``name`` to ``version``: logged, never returned.

        Keeps the arms in force (a canary can run with a shadow). No approval needed.
        """
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            mv = version_row(session, name, version)
            if mv.archived_at is not None:
                raise InvalidTransition(f"{name} v{version} is archived and cannot shadow.")
            previous = active_policy(session, name)
            arms = previous.arms if previous is not None else ()
            production = _production(session, name)
            answering = {a.version for a in arms if a.version is not None}
            if not arms:
                if production is None:
                    raise InvalidTransition(
                        f"{name} has no production version whose requests could be mirrored; "
                        f"promote one first (shipyard promote {name} N)."
                    )
                answering.add(production)
            elif any(a.version is None for a in arms) and production is not None:
                answering.add(production)
            if version in answering:
                raise InvalidTransition(
                    f"{name} v{version} already answers requests; shadow another version."
                )
            if previous is not None and previous.shadow == version:
                raise InvalidTransition(f"{name} v{version} is already the shadow.")
            kind = previous.kind if previous is not None and arms else "shadow"
            sticky = previous.sticky if previous is not None and arms else None
            return append_policy(
                session,
                name,
                kind,
                arms,
                version,
                sticky,
                actor,
                reason,
                details={"shadow": version},
                action="traffic.shadow",
            )

    def clear(
        self, name: str, *, actor: str, reason: str = "", expected_policy: int | None = None
    ) -> Policy:
        """End ``name``'s policy: every request goes to the served alias again.

        ``expected_policy`` (in ``canary``, ``split``, ``clear`` and ``rollback``) is the id of
        the policy in force when the caller looked (``0``: none): another one in force now
        refuses the change (``InvalidTransition``), so a stale page is never applied."""
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            check_expected_policy(session, name, expected_policy)
            ended = end_policy(session, name, actor=actor, cause="cleared", reason=reason)
            if ended is None:
                raise InvalidTransition(f"{name} has no traffic policy to end.")
            return ended

    def rollback(
        self,
        name: str,
        *,
        actor: str,
        reason: str = "",
        policy_id: int | None = None,
        expected_policy: int | None = None,
        expected_version: int | None = None,
    ) -> RollbackOutcome:
        """End an active canary or split; with none, roll production back a version.

        With ``policy_id``, only that policy is ended (an automated check must not end a
        policy started after it looked); another one in force raises ``InvalidTransition``.
        ``expected_policy`` and ``expected_version`` (production's version, ``0``: none) are
        what the caller saw; either changed meanwhile refuses the rollback.
        """
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            check_expected_policy(session, name, expected_policy)
            check_expected_alias(
                session.get(Alias, (name, PRODUCTION)), name, PRODUCTION, expected_version
            )
            previous = active_policy(session, name)
            if policy_id is not None and (previous is None or previous.id != policy_id):
                now = previous.describe() if previous is not None else "no policy"
                raise InvalidTransition(
                    f"{name}'s traffic policy {policy_id} is no longer in force (now: {now}); "
                    "nothing was changed."
                )
            ended = end_policy(
                session, name, actor=actor, cause="rollback", reason=reason, keep_shadow=True
            )
        if ended is not None:
            return RollbackOutcome(ended=ended, previous=previous)
        change = self.registry.rollback(
            name, actor=actor, reason=reason, expected_version=expected_version
        )
        return RollbackOutcome(change=change)

    def _answering_version(
        self, session: Session, name: str, version: int, actor: str, force: str | None
    ) -> None:
        """A version about to answer a share of production traffic: approved, and through
        the gates."""
        mv = _answering_version(session, name, version)
        require_gates(
            session, mv, self.project, actor=actor, what="take production traffic", force=force
        )


def _production(session: Session, name: str) -> int | None:
    alias = session.get(Alias, (name, PRODUCTION))
    return alias.version if alias is not None else None


def _answering_version(session: Session, name: str, version: int) -> ModelVersion:
    """The version, refused unless it may answer traffic (not archived, approved)."""
    mv = version_row(session, name, version)
    if mv.archived_at is not None:
        raise InvalidTransition(f"{name} v{version} is archived and cannot take traffic.")
    require_approval(session, mv)
    return mv
