"""Session helpers over ``rollouts`` rows shared by ``Rollouts`` and the traffic policy code.

Every traffic policy change goes through ``_policy.append_policy``, which calls
``cancel_running`` under the model's row lock: a change that the running rollout did not make
itself (``traffic clear``, ``rollback``, a promotion, another canary, split or shadow) cancels
it in the same transaction, audited, so a rollout never steps a policy someone else changed.
``Rollouts`` marks its own changes by putting the rollout's id in ``session.info[OWN_CHANGE]``
for the transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.audit import append_event
from shipyard.store.tables import Rollout, utcnow

#: ``session.info`` key: the id of the rollout making the policy change in this transaction.
OWN_CHANGE = "shipyard.rollout"
RUNNING = "running"


def running_row(session: Session, name: str) -> Rollout | None:
    """The running rollout of ``name`` (at most one: ``Rollouts.start`` refuses a second)."""
    return session.scalar(
        select(Rollout)
        .where(Rollout.model_name == name, Rollout.status == RUNNING)
        .order_by(Rollout.id.desc())
        .limit(1)
    )


def end_row(
    session: Session,
    row: Rollout,
    status: str,
    *,
    actor: str,
    message: str,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Finish ``row`` as ``status`` and audit ``rollout.<status>``."""
    now = utcnow()
    row.status, row.message, row.updated_at = status, message[:4000], now
    row.details = {**row.details, "ended_by": actor, **(details or {})}
    append_event(
        session,
        actor=actor,
        action=f"rollout.{status}",
        subject=f"model:{row.model_name}/{row.version}",
        details={"rollout": row.id, "percent": row.steps[row.step], "message": row.message},
        reason=reason,
    )


def cancel_running(session: Session, name: str, *, actor: str, cause: str, reason: str) -> None:
    """Cancel ``name``'s running rollout unless this transaction is the rollout's own change."""
    row = running_row(session, name)
    if row is None or session.info.get(OWN_CHANGE) == row.id:
        return
    end_row(
        session,
        row,
        "cancelled",
        actor=actor,
        message=f"cancelled at {row.steps[row.step]:g}%: {actor} changed the traffic policy "
        f"({cause}); the rollout no longer steps it",
        reason=reason,
        details={"cause": cause},
    )
