"""Raising alerts: cool-down, delivery through channels, storage, audit, acknowledgement."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select

from shipyard.alerting._alert import Alert
from shipyard.alerting._channel import Channel
from shipyard.alerting._cooldown import should_send
from shipyard.alerting._rules import AlertRule
from shipyard.audit import append_event
from shipyard.errors import InvalidTransition, NotFound
from shipyard.registry import require_writer
from shipyard.store import Store
from shipyard.store.tables import AlertRecord, utcnow


class Alerts:
    """Stored alerts of one store.

    >>> fired = evaluate(config.rules, rows)  # doctest: +SKIP
    >>> Alerts(store).raise_all(fired, config.channels, actor="cron")  # doctest: +SKIP
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def raise_all(
        self,
        fired: Sequence[tuple[AlertRule, Alert]],
        channels: dict[str, Channel],
        *,
        actor: str,
        now: datetime | None = None,
        budget: float | None = None,
    ) -> list[AlertRecord]:
        """Send each alert unless its rule's cool-down holds it back; store and audit all.

        ``budget`` bounds the seconds each channel may spend on one alert, retries included
        (``None``: the channel's own timeout and attempts decide). A channel whose server did
        not answer in time is not tried again for the rest of ``fired``: its later alerts are
        stored as failed ("not tried"), so a stalled webhook costs a monitoring run one
        timeout, not one per alert (10 alerts: 33 s, not 5.5 minutes, with the defaults).
        """
        now = now or datetime.now(UTC)
        records = []
        stalled: dict[str, str] = {}  # channel -> its timeout, earlier in this batch
        for rule, alert in fired:
            last = self._last_sent(rule.name, alert.key)
            status, deliveries = "suppressed", {}
            if should_send(rule.name, alert.key, now, last, rule.cooldown_delta):
                for name in rule.channels:
                    if name in stalled:
                        deliveries[name] = {
                            "ok": False,
                            "attempts": 0,
                            "error": f"not tried: it timed out on an earlier alert of this "
                            f"run ({stalled[name]})",
                        }
                        continue
                    deadline = None if budget is None else time.monotonic() + budget
                    # never raises; failures are returned
                    d = channels[name].send(alert, deadline=deadline)
                    deliveries[name] = {"ok": d.ok, "attempts": d.attempts, "error": d.error}
                    if d.timed_out:
                        stalled[name] = d.error or "timed out"
                ok = all(d["ok"] for d in deliveries.values())
                status = "sent" if ok else "failed"
            record = AlertRecord(
                id=alert.id,
                rule=rule.name,
                key=alert.key,
                severity=alert.severity,
                model_name=alert.model,
                version=alert.version,
                metric=alert.metric,
                feature=alert.feature,
                value=alert.value,
                threshold=alert.threshold,
                message=alert.message,
                status=status,
                deliveries=deliveries,
                created_at=utcnow(),
                acknowledged_at=None,
                acknowledged_by=None,
            )
            with self.store.write() as session:
                session.add(record)
                append_event(
                    session,
                    actor=actor,
                    action=f"alert.{status}",
                    subject=f"model:{alert.model}/{alert.version}",
                    details={
                        "alert": alert.id,
                        "rule": rule.name,
                        "key": alert.key,
                        "value": alert.value,
                        "deliveries": deliveries,
                    },
                )
            records.append(record)
        return records

    def _last_sent(self, rule: str, key: str) -> dict[tuple[str, str], datetime]:
        with self.store.read() as session:
            last = session.scalar(
                select(func.max(AlertRecord.created_at)).where(
                    AlertRecord.rule == rule,
                    AlertRecord.key == key,
                    AlertRecord.status.in_(("sent", "failed")),
                )
            )
        if last is None:
            return {}
        return {(rule, key): last if last.tzinfo else last.replace(tzinfo=UTC)}

    def list(
        self, *, model: str | None = None, unacknowledged: bool = False, limit: int = 100
    ) -> Sequence[AlertRecord]:
        query = select(AlertRecord).order_by(AlertRecord.created_at.desc()).limit(limit)
        if model:
            query = query.where(AlertRecord.model_name == model)
        if unacknowledged:
            query = query.where(AlertRecord.acknowledged_at.is_(None))
        with self.store.read() as session:
            return session.scalars(query).all()

    def acknowledge(self, alert_id: str, *, actor: str) -> AlertRecord:
        """Acknowledge an alert (audited as ``alert.acknowledged``); refused for a viewer, and
        for an alert acknowledged already, so a stale page or a double submit changes
        nothing."""
        with self.store.write() as session:
            require_writer(session, actor, "acknowledge alerts")
            record = session.get(AlertRecord, alert_id)
            if record is None:
                raise NotFound(
                    f"There is no alert '{alert_id}'. 'shipyard alerts list' shows them."
                )
            if record.acknowledged_at is not None:
                raise InvalidTransition(
                    f"Alert {alert_id} was already acknowledged by {record.acknowledged_by}."
                )
            record.acknowledged_at, record.acknowledged_by = utcnow(), actor
            append_event(
                session,
                actor=actor,
                action="alert.acknowledged",
                subject=f"model:{record.model_name}/{record.version}",
                details={"alert": alert_id, "rule": record.rule},
            )
        return record
