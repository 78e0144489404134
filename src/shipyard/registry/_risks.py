"""The risk register: each model's known risks, their owners and mitigations, and the rule
that an open high risk blocks an approval unless the approver acknowledges it.

A risk concerns one version, or (``version=None``) every version of the model. Adding and
closing are audited (``risk.added``, ``risk.closed``); an approval that acknowledges risks
stores one ``risk_acknowledgements`` row per risk and names them in its ``version.approved``
event.

>>> risks = Risks(store)  # doctest: +SKIP
>>> risk = risks.add("churn", title="Trained before the price change", severity="high",
...                  owner="carol", actor="alice")  # doctest: +SKIP
>>> [r.id for r in risks.list("churn", version=3)]  # doctest: +SKIP
[1]
>>> risks.close("churn", risk.id, actor="bob", resolution="Retrained on Q3")  # doctest: +SKIP
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from shipyard.audit import append_event
from shipyard.auth import can_approve, role_of
from shipyard.errors import InvalidInput, InvalidTransition, NotFound, PermissionDenied
from shipyard.registry._queries import lock_model, model_row, version_row
from shipyard.store import Store, tables, to_entity
from shipyard.store.tables import utcnow

#: The severities of a risk, from least to most serious.
SEVERITIES = ("low", "medium", "high")


@dataclass(frozen=True)
class Risk:
    """One entry of a model's risk register; ``version`` ``None``: every version.

    ``status`` is ``open`` or ``closed`` (then ``closed_by``, ``closed_at`` and
    ``resolution`` say by whom, when and why).
    """

    id: int
    model_name: str
    version: int | None
    title: str
    severity: str
    owner: str
    mitigation: str = field(repr=False)
    status: str
    created_at: datetime = field(repr=False)
    created_by: str = field(repr=False)
    closed_at: datetime | None = field(repr=False)
    closed_by: str | None = field(repr=False)
    resolution: str = field(repr=False)

    @property
    def is_open(self) -> bool:
        """Whether the risk is still open."""
        return self.status == "open"

    @property
    def scope(self) -> str:
        """``"all versions"`` or ``"v3"``."""
        return "all versions" if self.version is None else f"v{self.version}"


class Risks:
    """The risk registers of one ``Store``; every change is audited."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(
        self,
        name: str,
        *,
        title: str,
        severity: str,
        owner: str,
        actor: str,
        mitigation: str = "",
        version: int | None = None,
    ) -> Risk:
        """Record an open risk of ``name`` (of one ``version``, or of every version)."""
        level = check_severity(severity)
        title, owner = (title or "").strip(), (owner or "").strip()
        if not title:
            raise InvalidInput('A risk needs a title: pass --risk "what could go wrong".')
        if not owner:
            raise InvalidInput("A risk needs an owner: pass --owner USER (who mitigates it).")
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            if version is not None:
                version_row(session, name, version)
            row = tables.Risk(
                model_name=name,
                version=version,
                title=title,
                severity=level,
                owner=owner,
                mitigation=(mitigation or "").strip(),
                status="open",
                created_at=utcnow(),
                created_by=actor,
                resolution="",
            )
            session.add(row)
            session.flush()
            append_event(
                session,
                actor=actor,
                action="risk.added",
                subject=_subject(name, version),
                details={
                    "risk": row.id,
                    "title": title,
                    "severity": level,
                    "owner": owner,
                    "mitigation": row.mitigation,
                },
            )
            return to_entity(Risk, row)

    def list(
        self, name: str, *, version: int | None = None, include_closed: bool = False
    ) -> builtins.list[Risk]:
        """``name``'s risks, oldest first: the open ones (all with ``include_closed``); with
        ``version``, those of that version and those of every version."""
        with self.store.read() as session:
            if version is None:
                model_row(session, name)
            else:
                version_row(session, name, version)
            return [to_entity(Risk, r) for r in _risk_rows(session, name, version, include_closed)]

    def close(self, name: str, risk_id: int, *, actor: str, resolution: str) -> Risk:
        """Close an open risk with its ``resolution``; a high risk is closed by an approver."""
        resolution = (resolution or "").strip()
        if not resolution:
            raise InvalidInput('Closing a risk needs a reason: pass --reason "how it was met".')
        with self.store.write() as session:
            lock_model(session, name, actor=actor)
            row = session.get(tables.Risk, risk_id)
            if row is None or row.model_name != name:
                raise NotFound(
                    f"Model '{name}' has no risk #{risk_id}; shipyard risks list {name} --all "
                    "lists them."
                )
            if row.status != "open":
                raise InvalidTransition(
                    f"Risk #{risk_id} of {name} is already closed (by {row.closed_by}: "
                    f"{row.resolution!r})."
                )
            role = role_of(session, actor)
            if row.severity == "high" and not can_approve(role):
                raise PermissionDenied(
                    f"'{actor}' ({role}) cannot close high risk #{risk_id}: only approvers "
                    "can, since it blocks approvals. Ask an approver."
                )
            row.status, row.closed_at, row.closed_by = "closed", utcnow(), actor
            row.resolution = resolution
            append_event(
                session,
                actor=actor,
                action="risk.closed",
                subject=_subject(name, row.version),
                details={"risk": row.id, "title": row.title, "severity": row.severity},
                reason=resolution,
            )
            return to_entity(Risk, row)


def check_severity(severity: str) -> str:
    """``severity`` in lower case if it is one of ``SEVERITIES``; else ``InvalidInput``.

    >>> check_severity("High")
    'high'
    >>> check_severity("critical")
    Traceback (most recent call last):
    ...
    shipyard.errors.InvalidInput: Severity 'critical' is not one of low, medium, high.
    """
    level = (severity or "").strip().lower()
    if level not in SEVERITIES:
        raise InvalidInput(f"Severity '{severity}' is not one of {', '.join(SEVERITIES)}.")
    return level


def acknowledge_risks(
    session: Session, mv: tables.ModelVersion, actor: str, acknowledge: Iterable[int]
) -> list[int]:
    """Within an approval of ``mv`` by ``actor``: refuse (``InvalidTransition``) while an
    open high risk of the version is not in ``acknowledge``; record each acknowledgement and
    return the acknowledged risk ids."""
    name, version = mv.model_name, mv.version
    open_risks = {r.id: r for r in _risk_rows(session, name, version, include_closed=False)}
    wanted = sorted(set(acknowledge))
    unknown = [i for i in wanted if i not in open_risks]
    if unknown:
        listed = ", ".join(f"#{i}" for i in open_risks) or "none"
        raise NotFound(
            f"Risk {', '.join(f'#{i}' for i in unknown)} is not an open risk of {name} "
            f"v{version} (open: {listed}); shipyard risks list {name} lists them."
        )
    blocking = [r for r in open_risks.values() if r.severity == "high" and r.id not in wanted]
    if blocking:
        listed = "; ".join(f"#{r.id} {r.title!r} (owner {r.owner})" for r in blocking)
        flags = " ".join(f"--ack-risk {r.id}" for r in blocking)
        raise InvalidTransition(
            f"{name} v{version} has open high risk(s) that block approval: {listed}. "
            f'Acknowledge each: shipyard approve {name} {version} --reason "..." {flags} '
            f'(or close it: shipyard risks close {name} ID --reason "...").'
        )
    now = utcnow()
    for risk_id in wanted:
        session.add(
            tables.RiskAcknowledgement(
                risk_id=risk_id, model_name=name, version=version, approver=actor, created_at=now
            )
        )
    return wanted


def _risk_rows(
    session: Session, name: str, version: int | None, include_closed: bool
) -> list[tables.Risk]:
    query = select(tables.Risk).where(tables.Risk.model_name == name)
    if version is not None:
        query = query.where(or_(tables.Risk.version.is_(None), tables.Risk.version == version))
    if not include_closed:
        query = query.where(tables.Risk.status == "open")
    return list(session.scalars(query.order_by(tables.Risk.id)))


def _subject(name: str, version: int | None) -> str:
    return f"model:{name}" + (f"/{version}" if version is not None else "")
