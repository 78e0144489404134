"""Reading and verifying the append-only, hash-chained audit log.

Events are appended by ``shipyard.store.append_event`` (the store writes the first one when it
creates a database). Each event stores the SHA-256 of the previous event; the ``audit_head``
row names the last one. ``verify`` recomputes the chain and names the first event that was
modified, deleted or inserted out of band. (An attacker with write access who recomputes
every later hash is not detected by the chain alone; export ``audit_head.hash`` elsewhere to
anchor it.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.store import GENESIS, HASHED_FIELDS, event_hash
from shipyard.store.tables import AuditEvent, AuditHead


@dataclass(frozen=True)
class Verification:
    """The outcome of ``verify``: ``ok``, how many events were checked, and the first break."""

    ok: bool
    checked: int
    broken_seq: int | None = None
    problem: str = ""


def verify(session: Session) -> Verification:
    """Recompute the chain; report the first event that does not verify."""
    expected_prev = GENESIS
    expected_seq = 1
    checked = 0
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).yield_per(1000)
    for ev in rows:
        if ev.seq != expected_seq:
            return Verification(
                False, checked, expected_seq, f"event {expected_seq} is missing (deleted)"
            )
        if ev.prev_hash != expected_prev:
            return Verification(
                False, checked, ev.seq, f"event {ev.seq} does not follow event {ev.seq - 1}"
            )
        recomputed = event_hash(**{name: getattr(ev, name) for name in HASHED_FIELDS})
        if recomputed != ev.hash:
            return Verification(
                False, checked, ev.seq, f"event {ev.seq} was modified after it was written"
            )
        expected_prev, expected_seq = ev.hash, ev.seq + 1
        checked += 1
    head = session.get(AuditHead, 1)
    last_seq = expected_seq - 1
    if head is not None and (head.seq != last_seq or head.hash != expected_prev):
        if head.seq > last_seq:
            problem = f"events {last_seq + 1}..{head.seq} were deleted from the end"
            return Verification(False, checked, last_seq + 1, problem)
        return Verification(False, checked, head.seq + 1, "events were added out of band")
    if head is None and checked:
        return Verification(False, checked, 1, "the chain head is missing")
    return Verification(True, checked)


def list_events(
    session: Session,
    *,
    subject: str | None = None,
    action: str | None = None,
    limit: int = 100,
) -> Sequence[AuditEvent]:
    """The newest events first, optionally filtered by subject prefix or action."""
    query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
    if subject:
        query = query.where(AuditEvent.subject.startswith(subject))
    if action:
        query = query.where(AuditEvent.action == action)
    return session.scalars(query).all()
