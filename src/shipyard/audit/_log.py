"""The append-only, hash-chained audit log.

Each event stores the SHA-256 of the previous event; the ``audit_head`` row names the last
one. ``verify`` recomputes the chain and names the first event that was modified, deleted or
inserted out of band. (An attacker with write access who recomputes every later hash is not
detected by the chain alone; export ``audit_head.hash`` elsewhere to anchor it.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.store._models import AuditEvent, AuditHead, utcnow
from shipyard.store._store import APPENDED_EVENTS

GENESIS = "0" * 64
#: The event columns covered by its hash (every column but ``hash`` itself).
_HASHED = ("seq", "at", "actor", "action", "subject", "details", "reason", "prev_hash")


def event_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any],
    reason: str,
    prev_hash: str,
) -> str:
    """The SHA-256 of an event's canonical JSON (sorted keys, UTC time to the microsecond)."""
    body = {
        "seq": seq,
        "at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details,
        "reason": reason,
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def append_event(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEvent:
    """Append one event inside the caller's write transaction.

    The head row is locked (``FOR UPDATE``; SQLite's write transactions are already exclusive),
    so concurrent appends queue up and the chain never forks.
    """
    head = session.scalars(select(AuditHead).where(AuditHead.id == 1).with_for_update()).first()
    seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS)
    at = utcnow()
    details = json.loads(json.dumps(details or {}, default=str))  # store exactly what we hash
    fields: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": details,
        "reason": reason,
        "prev_hash": prev,
    }
    digest = event_hash(**fields)
    event = AuditEvent(**fields, hash=digest)
    session.add(event)
    session.info.setdefault(APPENDED_EVENTS, []).append(event)  # for Store listeners
    if head is None:
        session.add(AuditHead(id=1, seq=seq, hash=digest))
    else:
        head.seq, head.hash = seq, digest
    return event


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
        recomputed = event_hash(**{name: getattr(ev, name) for name in _HASHED})
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
