"""A model's traffic policy as a record (``Policy``, ``Arm``) and the session helpers that read,
append and end it, shared by ``Traffic`` and ``Registry`` (a promotion ends a canary).

Each helper runs inside the caller's write transaction, under the model's row lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.audit import append_event
from shipyard.errors import InvalidTransition
from shipyard.registry._refs import PRODUCTION
from shipyard.registry._rollout_rows import cancel_running
from shipyard.store.tables import TrafficPolicy, utcnow


@dataclass(frozen=True)
class Arm:
    """One share of the answered traffic: ``version`` (``None``: the served alias)."""

    version: int | None
    weight: float

    def to_json(self) -> dict[str, int | float | None]:
        return {"version": self.version, "weight": self.weight}


@dataclass(frozen=True)
class Policy:
    """One row of a model's traffic policy history."""

    id: int
    model: str
    kind: str
    arms: tuple[Arm, ...]
    shadow: int | None
    sticky: str | None
    created_at: datetime
    created_by: str
    reason: str

    @property
    def active(self) -> bool:
        """False for the row that ends a policy."""
        return bool(self.arms) or self.shadow is not None

    @property
    def answering(self) -> bool:
        """True when versions other than the alias answer part of the traffic."""
        return any(a.version is not None for a in self.arms)

    def versions(self) -> set[int]:
        """Every numbered version the policy needs loaded (arms and shadow)."""
        out = {a.version for a in self.arms if a.version is not None}
        if self.shadow is not None:
            out.add(self.shadow)
        return out

    def describe(self) -> str:
        """One line, e.g. ``canary: production 90%, v4 10% (sticky header:X-User)``."""
        if not self.active:
            return "none (every request goes to the served alias)"
        parts = [f"{arm_name(a.version)} {a.weight:g}%" for a in self.arms]
        text = f"{self.kind}: " + ", ".join(parts) if parts else self.kind
        if self.shadow is not None:
            text += f"{'; ' if parts else ': '}shadow v{self.shadow}"
        if self.sticky:
            text += f" (sticky {self.sticky})"
        return text

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "model": self.model,
            "kind": self.kind,
            "arms": [a.to_json() for a in self.arms],
            "shadow": self.shadow,
            "sticky": self.sticky,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "reason": self.reason,
            "summary": self.describe(),
        }

    @classmethod
    def from_row(cls, row: TrafficPolicy) -> Policy:
        arms = tuple(
            Arm(None if a.get("version") is None else int(a["version"]), float(a["weight"]))
            for a in (row.arms or [])
        )
        return cls(
            id=row.id,
            model=row.model_name,
            kind=row.kind,
            arms=arms,
            shadow=row.shadow,
            sticky=row.sticky,
            created_at=row.created_at,
            created_by=row.created_by,
            reason=row.reason,
        )


def arm_name(version: int | None) -> str:
    return PRODUCTION if version is None else f"v{version}"


def active_policy(session: Session, name: str) -> Policy | None:
    """The policy in force for ``name`` (its newest row, unless that row ended it)."""
    row = session.scalar(
        select(TrafficPolicy)
        .where(TrafficPolicy.model_name == name)
        .order_by(TrafficPolicy.id.desc())
        .limit(1)
    )
    if row is None:
        return None
    policy = Policy.from_row(row)
    return policy if policy.active else None


def check_expected_policy(session: Session, name: str, expected: int | None) -> None:
    """Refuse (``InvalidTransition``) a traffic change made from a stale view: ``expected`` is
    the id of the policy in force when the caller looked (``0``: none; ``None``: not
    checked). The caller holds the model's row lock, so a double submit is refused."""
    if expected is None:
        return
    current = active_policy(session, name)
    now = current.id if current is not None else 0
    if now != expected:
        seen = f"policy #{expected}" if expected else "no policy"
        found = f"policy #{now} ({current.describe()})" if current is not None else "no policy"
        raise InvalidTransition(
            f"{name}'s traffic policy changed meanwhile: {found} is in force now, not {seen} "
            "as you saw; nothing was changed. Look again and decide."
        )


def end_policy(
    session: Session,
    name: str,
    *,
    actor: str,
    cause: str,
    reason: str = "",
    keep_shadow: bool = False,
    promoted: int | None = None,
) -> Policy | None:
    """End the policy in force (only its arms with ``keep_shadow``); ``None`` if nothing to end.

    The caller holds the model's row lock. ``promoted`` (a promotion) also ends a shadow of
    that version, which would otherwise mirror itself.
    """
    current = active_policy(session, name)
    if current is None or (keep_shadow and not current.arms):
        return None
    shadow = current.shadow if keep_shadow else None
    if shadow is not None and shadow == promoted:
        shadow = None
    kind = "shadow" if shadow is not None else "none"
    return append_policy(
        session,
        name,
        kind,
        (),
        shadow,
        None,
        actor,
        reason,
        details={"cause": cause, "ended": current.describe(), "policy": current.id},
        action="traffic.cleared",
    )


def referenced_versions(session: Session, name: str) -> set[int]:
    """The versions of ``name`` the policy in force uses (its arms' versions and the shadow).

    Runs in the caller's session: ``Registry.archive`` refuses to archive them and
    ``shipyard gc`` keeps their archive files.
    """
    policy = active_policy(session, name)
    return policy.versions() if policy is not None else set()


def append_policy(
    session: Session,
    name: str,
    kind: str,
    arms: Sequence[Arm],
    shadow: int | None,
    sticky: str | None,
    actor: str,
    reason: str,
    *,
    details: dict[str, object],
    action: str | None = None,
) -> Policy:
    """Append a policy row (the new newest: it rules) and audit it as ``action``.

    A running rollout of ``name`` that did not make this change is cancelled (audited).
    """
    row = TrafficPolicy(
        model_name=name,
        kind=kind,
        arms=[a.to_json() for a in arms],
        shadow=shadow,
        sticky=sticky,
        created_at=utcnow(),
        created_by=actor,
        reason=reason,
    )
    session.add(row)
    session.flush()
    policy = Policy.from_row(row)
    append_event(
        session,
        actor=actor,
        action=action or f"traffic.{kind}",
        subject=f"model:{name}",
        details={**details, "policy": policy.id, "summary": policy.describe()}
        if action != "traffic.cleared"
        else {**details, "now": policy.describe()},
        reason=reason,
    )
    cause = str(details.get("cause") or action or f"traffic.{kind}")
    cancel_running(session, name, actor=actor, cause=cause, reason=reason)
    return policy
