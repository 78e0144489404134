"""The audit page: the event log newest first, 100 per page, filtered, with the chain's status.

Pages are keyset-paginated on ``seq`` (``before``: the first seq *not* shown, i.e. the page
holds events with ``seq < before``), so page 500 costs what page 1 does.

Verifying the chain (``shipyard.audit.verify``) rehashes every event: far too slow to repeat
on every page view of a long log. ``ChainCache`` keeps the last result, keyed by the chain's
head (seq, hash), and:

- when the head has not moved, returns the cached result (no event read);
- when events were appended after a head that verified, checks only the new ones (each must
  follow the previous hash and hash to itself), so the cost follows the appends;
- every ``max_age`` seconds (default 300) verifies the whole chain again, because an event
  modified in place leaves the head unchanged: the page shows the chain as of its last full
  check, at most ``max_age`` old (``checked_at`` says when). ``shipyard audit verify`` always
  checks everything.

One ``ChainCache`` lives on the UI app (``app.state``), none is global.

>>> page = audit_page(store, actor="alice", cache=ChainCache())     # doctest: +SKIP
>>> page.chain.ok, [e.seq for e in page.events][:3]                   # doctest: +SKIP
(True, [812, 790, 788])
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.audit import Verification, event_hash, verify
from shipyard.store import HASHED_FIELDS, Store
from shipyard.store.tables import AuditEvent, AuditHead

#: Events per page.
PAGE_SIZE = 100


class AuditEventView(BaseModel):
    """One audit event as the page shows it."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    reason: str
    details: dict[str, Any]
    hash: str


class ChainStatus(BaseModel):
    """Whether the chain verifies; else the first broken event and what is wrong with it."""

    ok: bool
    checked: int = Field(description="Events that verify (before the first broken one).")
    broken_seq: int | None = None
    problem: str = ""
    head_seq: int | None = None
    checked_at: datetime = Field(description="When the whole chain was last verified.")


class AuditFilters(BaseModel):
    """The page's filters: exact actor and action, subject prefix (``model:churn``)."""

    actor: str | None = None
    action: str | None = None
    subject: str | None = None


class AuditPage(BaseModel):
    """One page of the log: ``events`` newest first; ``next_before`` is the ``before`` of the
    next (older) page, ``None`` on the last one."""

    events: list[AuditEventView]
    chain: ChainStatus
    filters: AuditFilters
    before: int | None
    next_before: int | None
    page_size: int


@dataclass
class _Verified:
    head: tuple[int, str] | None
    result: Verification
    full_at: float
    checked_at: datetime


class ChainCache:
    """The chain's verification, remembered per head (see the module's docstring)."""

    def __init__(self, *, max_age: float = 300.0) -> None:
        self.max_age = max_age
        self._last: _Verified | None = None
        self._lock = threading.Lock()

    def status(self, store: Store) -> ChainStatus:
        """The chain's status now, verifying as little as the cached result allows."""
        with self._lock, store.read() as session:
            last = self._last
            head_row = session.get(AuditHead, 1)
            head = None if head_row is None else (head_row.seq, head_row.hash)
            now = time.monotonic()
            if last is None or now - last.full_at >= self.max_age:
                last = _Verified(head, verify(session), now, datetime.now(UTC))
            elif head != last.head:
                if last.result.ok and last.head is not None and head is not None:
                    result = _verify_after(session, last.head, head, last.result.checked)
                    last = _Verified(head, result, last.full_at, last.checked_at)
                else:  # a broken chain changed, or the head is gone: check it all
                    last = _Verified(head, verify(session), now, datetime.now(UTC))
            self._last = last
        return ChainStatus(
            ok=last.result.ok,
            checked=last.result.checked,
            broken_seq=last.result.broken_seq,
            problem=last.result.problem,
            head_seq=None if head is None else head[0],
            checked_at=last.checked_at,
        )


def _verify_after(
    session: Session, verified: tuple[int, str], head: tuple[int, str], checked: int
) -> Verification:
    """Check the events appended after the verified head ``verified`` up to ``head``."""
    expected_seq, expected_prev = verified[0] + 1, verified[1]
    if head[0] < verified[0]:
        return verify(session)  # the head went back: events were deleted, say which
    rows = session.scalars(
        select(AuditEvent).where(AuditEvent.seq > verified[0]).order_by(AuditEvent.seq)
    ).yield_per(1000)
    for ev in rows:
        if ev.seq != expected_seq or ev.prev_hash != expected_prev:
            return verify(session)  # something is off: the full check names it exactly
        if event_hash(**{name: getattr(ev, name) for name in HASHED_FIELDS}) != ev.hash:
            return Verification(
                False, checked, ev.seq, f"event {ev.seq} was modified after it was written"
            )
        expected_prev, expected_seq = ev.hash, ev.seq + 1
        checked += 1
    if (expected_seq - 1, expected_prev) != head:
        return verify(session)
    return Verification(True, checked)


def audit_page(
    store: Store,
    *,
    before: int | None = None,
    actor: str | None = None,
    action: str | None = None,
    subject: str | None = None,
    cache: ChainCache | None = None,
    page_size: int = PAGE_SIZE,
) -> AuditPage:
    """Events with ``seq < before`` (default: the newest), matching the filters, newest first,
    ``page_size`` of them; and the chain's status (through ``cache`` when given)."""
    filters = AuditFilters(actor=actor or None, action=action or None, subject=subject or None)
    query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(page_size + 1)
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    if filters.actor:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.subject:
        query = query.where(AuditEvent.subject.startswith(filters.subject, autoescape=True))
    with store.read() as session:
        rows = session.scalars(query).all()
        events = [
            AuditEventView(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                action=e.action,
                subject=e.subject,
                reason=e.reason or "",
                details=e.details or {},
                hash=e.hash,
            )
            for e in rows[:page_size]
        ]
    chain = (cache or ChainCache()).status(store)
    return AuditPage(
        events=events,
        chain=chain,
        filters=filters,
        before=before,
        next_before=events[-1].seq if len(rows) > page_size else None,
        page_size=page_size,
    )
