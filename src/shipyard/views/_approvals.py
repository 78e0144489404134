"""The approvals inbox's read model: open approval requests and unreviewed candidates, each
with its evidence (the gate results, its metrics beside production's, the open risks and the
requester's comment).

An unreviewed candidate is an unarchived version newer than production (any version, for a
model with none) that nobody approved, rejected or asked to review. A fixed number of
queries serves the whole inbox, whatever the number of models (no query per item).

>>> inbox = approvals_view(store)  # doctest: +SKIP
>>> [(p.model, p.version, p.request.comment) for p in inbox.requests]  # doctest: +SKIP
[('churn', 4, 'AUC +2 points')]
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import and_, exists, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from shipyard.registry import PRODUCTION, ApprovalRequest, Risk
from shipyard.store import Store, tables, to_entity
from shipyard.views._version import (
    RequestView,
    RiskView,
    number_or_none,
    request_view,
    risk_view,
)

#: Items of each list the inbox shows (newest first).
INBOX_LIMIT = 100


class MetricComparison(BaseModel):
    """One metric of the candidate beside the production version's (``None``: not
    measured)."""

    metric: str
    candidate: float | None
    production: float | None
    difference: float | None


class PendingVersion(BaseModel):
    """A version waiting for an approver, with the evidence to decide."""

    model: str
    version: int
    author: str
    created_at: datetime
    description: str
    request: RequestView | None
    validated: bool
    gates_passed: bool | None
    gates_failed: list[str]
    waived: list[str]
    gates_total: int
    production: int
    metrics: list[MetricComparison]
    open_risks: list[RiskView]


class ApprovalsView(BaseModel):
    """The inbox: versions with an open request, then versions nobody reviewed yet."""

    requests: list[PendingVersion]
    unreviewed: list[PendingVersion]


def approvals_view(store: Store, *, limit: int = INBOX_LIMIT) -> ApprovalsView:
    """The approvals inbox of every model (``limit`` items per list, newest first)."""
    with store.read() as session:
        requests = [
            to_entity(ApprovalRequest, r)
            for r in session.scalars(
                select(tables.ApprovalRequest)
                .where(tables.ApprovalRequest.status == "open")
                .order_by(tables.ApprovalRequest.id.desc())
                .limit(limit)
            )
        ]
        requested = _versions(session, [(r.model_name, r.version) for r in requests])
        unreviewed = _unreviewed(session, limit)
        every = {**requested, **{(v.model_name, v.version): v for v in unreviewed}}
        evidence = _Evidence.read(session, list(every.values()))
    return ApprovalsView(
        requests=[
            evidence.pending(requested[(r.model_name, r.version)], r)
            for r in requests
            if (r.model_name, r.version) in requested
        ],
        unreviewed=[evidence.pending(v, None) for v in unreviewed],
    )


def _versions(
    session: Session, keys: list[tuple[str, int]]
) -> dict[tuple[str, int], tables.ModelVersion]:
    if not keys:
        return {}
    wanted = set(keys)
    rows = session.scalars(
        select(tables.ModelVersion).where(
            tables.ModelVersion.model_name.in_({name for name, _ in keys})
        )
    )
    return {(r.model_name, r.version): r for r in rows if (r.model_name, r.version) in wanted}


def _unreviewed(session: Session, limit: int) -> list[tables.ModelVersion]:
    mv = tables.ModelVersion
    prod = aliased(tables.Alias)
    return list(
        session.scalars(
            select(mv)
            .outerjoin(prod, and_(prod.model_name == mv.model_name, prod.alias == PRODUCTION))
            .where(
                mv.archived_at.is_(None),
                or_(prod.version.is_(None), mv.version > prod.version),
                ~exists().where(
                    tables.Approval.model_name == mv.model_name,
                    tables.Approval.version == mv.version,
                ),
                ~exists().where(
                    tables.ApprovalRequest.model_name == mv.model_name,
                    tables.ApprovalRequest.version == mv.version,
                ),
            )
            .order_by(mv.created_at.desc(), mv.model_name, mv.version.desc())
            .limit(limit)
        )
    )


class _Evidence:
    """Gate records, waivers, production versions and open risks of a set of versions, read
    with one query per table."""

    def __init__(
        self,
        records: dict[tuple[str, int], tables.GateRecord],
        waivers: dict[tuple[str, int], set[str]],
        production: dict[str, tables.ModelVersion],
        risks: dict[str, list[Risk]],
    ) -> None:
        self.records = records
        self.waivers = waivers
        self.production = production
        self.risks = risks

    @classmethod
    def read(cls, session: Session, versions: list[tables.ModelVersion]) -> _Evidence:
        names = {v.model_name for v in versions}
        digests = {(v.model_name, v.version): v.digest for v in versions}
        if not names:
            return cls({}, {}, {}, {})
        keys = list(digests)
        records: dict[tuple[str, int], tables.GateRecord] = {}
        for row in session.scalars(
            select(tables.GateRecord)
            .where(tuple_(tables.GateRecord.model_name, tables.GateRecord.version).in_(keys))
            .order_by(tables.GateRecord.id)
        ):
            if digests.get((row.model_name, row.version)) == row.digest:
                records[(row.model_name, row.version)] = row  # the newest wins
        waivers: dict[tuple[str, int], set[str]] = {}
        for w in session.scalars(
            select(tables.Waiver).where(
                tuple_(tables.Waiver.model_name, tables.Waiver.version).in_(keys)
            )
        ):
            if digests.get((w.model_name, w.version)) == w.digest:
                waivers.setdefault((w.model_name, w.version), set()).add(w.gate)
        aliases = {
            a.model_name: a.version
            for a in session.scalars(
                select(tables.Alias).where(
                    tables.Alias.model_name.in_(names), tables.Alias.alias == PRODUCTION
                )
            )
        }
        production = _versions(session, list(aliases.items()))
        risks: dict[str, list[Risk]] = {}
        for r in session.scalars(
            select(tables.Risk)
            .where(tables.Risk.model_name.in_(names), tables.Risk.status == "open")
            .order_by(tables.Risk.id)
        ):
            risks.setdefault(r.model_name, []).append(to_entity(Risk, r))
        return cls(
            records, waivers, {name: production[(name, v)] for name, v in aliases.items()}, risks
        )

    def pending(self, mv: tables.ModelVersion, request: ApprovalRequest | None) -> PendingVersion:
        key = (mv.model_name, mv.version)
        record = self.records.get(key)
        waived = self.waivers.get(key, set())
        champion = self.production.get(mv.model_name)
        failed = [str(g) for g in record.failed] if record is not None else []
        return PendingVersion(
            model=mv.model_name,
            version=mv.version,
            author=mv.author,
            created_at=mv.created_at,
            description=mv.description,
            request=request_view(request) if request is not None else None,
            validated=record is not None,
            gates_passed=(not [g for g in failed if g not in waived])
            if record is not None
            else None,
            gates_failed=[g for g in failed if g not in waived],
            waived=sorted(g for g in failed if g in waived),
            gates_total=len(record.report.get("gates", [])) if record is not None else 0,
            production=champion.version if champion is not None else 0,
            metrics=compare_metrics(mv.metrics, champion.metrics if champion else {}),
            open_risks=[
                risk_view(r)
                for r in self.risks.get(mv.model_name, [])
                if r.version is None or r.version == mv.version
            ],
        )


def compare_metrics(
    candidate: dict[str, object], production: dict[str, object]
) -> list[MetricComparison]:
    """Each metric of either version side by side, sorted by name.

    >>> [m.difference for m in compare_metrics({"auc": 0.9}, {"auc": 0.8, "f1": 0.5})]
    [0.1, None]
    """
    out = []
    for metric in sorted(set(candidate) | set(production)):
        mine, theirs = number_or_none(candidate.get(metric)), number_or_none(production.get(metric))
        diff = round(mine - theirs, 12) if mine is not None and theirs is not None else None
        out.append(
            MetricComparison(metric=metric, candidate=mine, production=theirs, difference=diff)
        )
    return out
