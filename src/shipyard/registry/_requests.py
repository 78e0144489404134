"""Approval requests: a scientist asks for a version's review, with a comment; an approver
approves (``Registry.approve``) or rejects it (``Registry.reject``), with a reason.

One request per version may be open at a time; a decision closes it (``approved`` or
``rejected``, by whom, when, why). A rejection of a version nobody asked about is kept as a
closed request with no requester, so the approvals inbox knows the version was reviewed.
Helpers here run in the caller's write transaction, under the model's row lock.

>>> registry.request_approval("churn", 4, actor="alice", comment="AUC +2 points")  # doctest: +SKIP
>>> registry.reject("churn", 4, actor="bob", reason="Fairness gap on age")  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.audit import append_event
from shipyard.auth import can_approve, role_of
from shipyard.errors import InvalidInput, InvalidTransition
from shipyard.store import tables
from shipyard.store.tables import utcnow

#: The longest comment or reason kept (a few paragraphs).
MAX_TEXT = 4000
REQUEST_STATUSES = ("open", "approved", "rejected", "withdrawn")


@dataclass(frozen=True)
class ApprovalRequest:
    """A request that a version be reviewed and how it ended: ``status`` is ``open``,
    ``approved``, ``rejected`` or ``withdrawn``; ``requested_by`` is empty for a rejection
    nobody asked for."""

    id: int
    model_name: str
    version: int
    requested_by: str
    comment: str = field(repr=False)
    created_at: datetime = field(repr=False)
    status: str
    decided_by: str | None
    decided_at: datetime | None = field(repr=False)
    reason: str = field(repr=False)


def check_text(text: str, what: str, *, required: bool) -> str:
    """``text`` stripped; ``InvalidInput`` when it is required and empty, or too long."""
    text = (text or "").strip()
    if required and not text:
        raise InvalidInput(f'{what} needs a reason: pass --reason "...".')
    if len(text) > MAX_TEXT:
        raise InvalidInput(
            f"The text of {what} is {len(text)} characters long; keep it to {MAX_TEXT}."
        )
    return text


def open_request(session: Session, name: str, version: int) -> tables.ApprovalRequest | None:
    """The open request of ``name`` v``version``, or ``None``."""
    return session.scalar(
        select(tables.ApprovalRequest).where(
            tables.ApprovalRequest.model_name == name,
            tables.ApprovalRequest.version == version,
            tables.ApprovalRequest.status == "open",
        )
    )


def add_request(
    session: Session, mv: tables.ModelVersion, actor: str, comment: str
) -> tables.ApprovalRequest:
    """Open a request for ``mv`` (audited ``version.approval_requested``); refused for an
    archived or already approved version, or while another request is open."""
    name, version = mv.model_name, mv.version
    if mv.archived_at is not None:
        raise InvalidTransition(
            f"{name} v{version} is archived; it cannot be reviewed for production."
        )
    pending = open_request(session, name, version)
    if pending is not None:
        raise InvalidTransition(
            f"{name} v{version} already has an open approval request (#{pending.id}, by "
            f"{pending.requested_by}); wait for an approver's decision."
        )
    approvers = session.scalars(
        select(tables.Approval.approver).where(
            tables.Approval.model_name == name,
            tables.Approval.version == version,
            tables.Approval.approver != mv.author,
        )
    ).all()
    valid = [a for a in approvers if can_approve(role_of(session, a))]
    if valid:
        raise InvalidTransition(
            f"{name} v{version} is already approved (by {', '.join(valid)}); it can be "
            f"promoted: shipyard promote {name} {version}."
        )
    row = tables.ApprovalRequest(
        model_name=name,
        version=version,
        requested_by=actor,
        comment=comment,
        created_at=utcnow(),
        status="open",
        decided_by=None,
        decided_at=None,
        reason="",
    )
    session.add(row)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="version.approval_requested",
        subject=f"model:{name}/{version}",
        details={"request": row.id, "author": mv.author, "comment": comment},
    )
    return row


def close_request(
    session: Session, mv: tables.ModelVersion, status: str, actor: str, reason: str
) -> tables.ApprovalRequest | None:
    """Close the open request of ``mv`` as ``status`` (``None`` when none was open)."""
    row = open_request(session, mv.model_name, mv.version)
    if row is not None:
        row.status, row.decided_by, row.decided_at, row.reason = status, actor, utcnow(), reason
    return row


def add_rejection(
    session: Session, mv: tables.ModelVersion, actor: str, reason: str
) -> tables.ApprovalRequest:
    """Record ``actor``'s rejection of ``mv`` (audited ``version.rejected``), closing its open
    request; with none open, a closed request with no requester keeps the decision. A second
    rejection with nothing asked since is refused (a double submit changes nothing)."""
    name, version = mv.model_name, mv.version
    row = close_request(session, mv, "rejected", actor, reason)
    if row is None:
        last = session.scalar(
            select(tables.ApprovalRequest)
            .where(
                tables.ApprovalRequest.model_name == name,
                tables.ApprovalRequest.version == version,
            )
            .order_by(tables.ApprovalRequest.id.desc())
            .limit(1)
        )
        if last is not None and last.status == "rejected":
            raise InvalidTransition(
                f"{name} v{version} was already rejected by {last.decided_by}; nothing was "
                "asked since (shipyard request-approval opens a new request)."
            )
        now = utcnow()
        row = tables.ApprovalRequest(
            model_name=name,
            version=version,
            requested_by="",
            comment="",
            created_at=now,
            status="rejected",
            decided_by=actor,
            decided_at=now,
            reason=reason,
        )
        session.add(row)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="version.rejected",
        subject=f"model:{name}/{version}",
        details={"request": row.id, "author": mv.author, "requested_by": row.requested_by},
        reason=reason,
    )
    return row
