"""The write side of the hash-chained audit log: ``append_event`` and the hash it chains.

It lives in the store because the store itself appends the first event when it creates a
database, and ``Store.write`` hands each transaction's appended events to its listeners.
Reading and verifying the chain is ``shipyard.audit``'s job.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.store.tables import AuditEvent, AuditHead, utcnow

#: The ``prev_hash`` of the first event.
GENESIS = "0" * 64
#: The event columns covered by its hash (every column but ``hash`` itself).
HASHED_FIELDS = ("seq", "at", "actor", "action", "subject", "details", "reason", "prev_hash")
#: ``session.info`` key under which ``append_event`` collects the events of a transaction.
APPENDED_EVENTS = "shipyard.appended_events"


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
