"""The audit hash chain detects modified, deleted and inserted events."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from shipyard import Client
from shipyard.audit import append_event, event_hash, verify
from shipyard.store import Store
from shipyard.store.tables import AuditEvent


def _fill(store: Store, n: int = 5) -> None:
    for i in range(n):
        with store.write() as session:
            append_event(
                session,
                actor="alice",
                action="test.event",
                subject=f"thing:{i}",
                details={"i": i, "x": 0.1 * i},
                reason=f"because {i}",
            )


def _verify(store: Store):  # type: ignore[no-untyped-def]
    with store.read() as session:
        return verify(session)


def test_intact_chain_verifies(store: Store) -> None:
    _fill(store)
    result = _verify(store)
    assert result.ok and result.checked == 6  # 5 + the store.created event


def test_hash_is_canonical_and_sensitive(store: Store) -> None:
    _fill(store, 1)
    with store.read() as session:
        ev = session.get(AuditEvent, 2)
        kwargs = dict(
            seq=ev.seq,
            at=ev.at,
            actor=ev.actor,
            action=ev.action,
            subject=ev.subject,
            details=ev.details,
            reason=ev.reason,
            prev_hash=ev.prev_hash,
        )
    assert event_hash(**kwargs) == ev.hash
    assert event_hash(**{**kwargs, "reason": "other"}) != ev.hash


def test_modified_event_is_named(store: Store) -> None:
    _fill(store)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"))
    result = _verify(store)
    assert not result.ok and result.broken_seq == 3 and "modified" in result.problem


def test_deleted_event_is_named(store: Store) -> None:
    _fill(store)
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq = 4"))
    result = _verify(store)
    assert not result.ok and result.broken_seq == 4 and "missing" in result.problem


def test_deleted_last_event_is_detected(store: Store) -> None:
    _fill(store)
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq = 6"))
    result = _verify(store)
    assert not result.ok and result.broken_seq == 6


def test_event_inserted_out_of_band_is_detected(store: Store) -> None:
    _fill(store)
    with store.engine.begin() as conn:
        # shift in two steps: a row-by-row "seq + 1" collides with the unique key on SQLite
        conn.execute(sa.text("UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 4"))
        conn.execute(sa.text("UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000"))
    with store.engine.begin() as conn:  # a forged event squeezed in at 4, without a valid hash
        conn.execute(
            sa.text(
                "INSERT INTO audit_events (seq, at, actor, action, subject, details, reason, "
                "prev_hash, hash) SELECT 4, at, 'mallory', 'version.approved', subject, details, "
                "reason, hash, hash FROM audit_events WHERE seq = 3"
            )
        )
    result = _verify(store)
    assert not result.ok and result.broken_seq == 4


def test_appended_at_the_end_out_of_band_is_detected(store: Store) -> None:
    _fill(store, 2)
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO audit_events (seq, at, actor, action, subject, details, reason, "
                "prev_hash, hash) SELECT seq + 1, at, 'mallory', action, subject, details, "
                "reason, hash, hash FROM audit_events WHERE seq = 3"
            )
        )
    result = _verify(store)
    assert not result.ok and result.broken_seq == 4


def test_every_registry_step_is_audited(
    client_for: Callable[[str], Client], approver: Client, fitted_pipeline, training_data
) -> None:  # type: ignore[no-untyped-def]
    alice = client_for("alice")
    X, y, Xe, ye = training_data
    with alice.start_run(model="churn") as run:
        run.register(fitted_pipeline, X_train=X, y_train=y, X_eval=Xe, y_eval=ye, onnx=False)
        run.register(fitted_pipeline, X_train=X, y_train=y, onnx=False)
    approver.approve("churn", 1, reason="ok")
    approver.approve("churn", 2, reason="ok")
    alice.promote("churn", 1, reason="first")
    alice.promote("churn", 2)
    approver.rollback("churn", reason="bad")
    with alice.store.read() as session:
        actions = [
            e.action for e in session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq))
        ]
        assert verify(session).ok
    for action in (
        "store.created",
        "user.role_set",
        "run.started",
        "model.created",
        "version.registered",
        "version.approved",
        "version.promoted",
        "version.rolled_back",
        "run.finished",
    ):
        assert action in actions, action
    with alice.store.read() as session:
        rb = session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "version.rolled_back"))
        assert (
            rb.actor == "bob"
            and rb.reason == "bad"
            and rb.details == {"alias": "production", "from": 2, "to": 1}
        )
