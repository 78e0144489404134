"""``audit_page``: keyset pages, filters, details kept as data, and the chain's status
(cached per head, appended events checked incrementally, a tampered event named)."""

from __future__ import annotations

from sqlalchemy import update

from shipyard.audit import append_event
from shipyard.store import Store
from shipyard.store.tables import AuditEvent
from shipyard.views import ChainCache, audit_page


def _append(store: Store, n: int, actor: str = "alice", subject: str = "model:churn") -> None:
    with store.write() as session:
        for i in range(n):
            append_event(
                session,
                actor=actor,
                action="test.event",
                subject=subject,
                details={"i": i, "html": "<script>x</script>"},
                reason="testing",
            )


def test_pages_are_newest_first_keyset_paginated_and_filtered(store: Store) -> None:
    _append(store, 130)
    _append(store, 5, actor="bob", subject="model:fraud")
    first = audit_page(store)
    assert len(first.events) == 100 and first.chain.ok
    seqs = [e.seq for e in first.events]
    assert seqs == sorted(seqs, reverse=True)
    assert first.next_before == seqs[-1]
    second = audit_page(store, before=first.next_before)
    assert second.events[0].seq == seqs[-1] - 1 and second.next_before is None
    total = len(first.events) + len(second.events)
    assert total == second.chain.head_seq  # every event once, the store's own included
    bob = audit_page(store, actor="bob")
    assert [e.actor for e in bob.events] == ["bob"] * 5
    fraud = audit_page(store, subject="model:fr")
    assert len(fraud.events) == 5 and fraud.filters.subject == "model:fr"
    assert audit_page(store, action="test.event", subject="model:churn").events[0].details == {
        "i": 129,
        "html": "<script>x</script>",
    }
    assert audit_page(store, subject="model:%").events == []  # a LIKE wildcard is text


def test_a_tampered_event_is_named_as_the_first_broken_one(store: Store) -> None:
    _append(store, 10)
    with store.write() as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == 5).values(details={"i": 99}))
    page = audit_page(store, cache=ChainCache())
    assert not page.chain.ok and page.chain.broken_seq == 5 and page.chain.checked == 4
    assert "event 5 was modified" in page.chain.problem


def test_the_cache_checks_only_new_events_and_fully_after_max_age(store: Store) -> None:
    cache = ChainCache(max_age=3600)
    _append(store, 3)
    first = cache.status(store)
    assert first.ok and first.checked == first.head_seq
    _append(store, 4)
    grown = cache.status(store)
    assert grown.ok and grown.checked == first.checked + 4 and grown.checked_at == first.checked_at
    with store.write() as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(reason="edited"))
    # The head did not move: the cached result stands until the next full check.
    assert cache.status(store).ok
    cache.max_age = 0
    broken = cache.status(store)
    assert not broken.ok and broken.broken_seq == 2
    _append(store, 1)  # a broken chain stays broken
    assert cache.status(store).broken_seq == 2


def test_a_modified_new_event_is_caught_by_the_incremental_check(store: Store) -> None:
    cache = ChainCache(max_age=3600)
    _append(store, 2)
    assert cache.status(store).ok
    _append(store, 3)
    head = cache.status(store).head_seq
    assert head is not None
    _append(store, 1)
    with store.write() as session:
        session.execute(
            update(AuditEvent).where(AuditEvent.seq == head + 1).values(actor="mallory")
        )
    status = cache.status(store)
    assert not status.ok and status.broken_seq == head + 1
