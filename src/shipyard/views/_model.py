"""The model page: versions with stages, approvals and gate status; aliases and their timeline
("what was in production at time T", who and why); the traffic policy and its history; the
objective and acceptance criterion against the live metric; open alerts; and the main
monitoring series of the last 30 days with the production version over it.

>>> page = model_page(store, project, "churn")  # doctest: +SKIP
>>> page.live.status, [v.stage for v in page.versions]  # doctest: +SKIP
('met', ['candidate', 'production', 'archived'])
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.config import ProjectConfig
from shipyard.errors import NotFound
from shipyard.registry import PRODUCTION, Policy, Registry, Traffic
from shipyard.store import Store
from shipyard.store.tables import (
    AlertRecord,
    Alias,
    AliasChange,
    Approval,
    GateRecord,
    Model,
    ModelHealth,
    Waiver,
)
from shipyard.views._catalogue import ModelFacts, open_alerts
from shipyard.views._health import (
    DEFAULT_STALE_AFTER,
    Health,
    HealthRow,
    LiveCriterion,
    criterion_of,
    judge,
    objective_of,
    stale_after,
)
from shipyard.views._series import Series, read_series, to_series

#: Days of monitoring the model page plots.
PLOT_DAYS = 30
#: Entries of the alias timeline, traffic history and open alerts shown.
TIMELINE_LIMIT = 200
HISTORY_LIMIT = 50


class ApprovalItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    approver: str
    at: datetime
    reason: str


class GateStatus(BaseModel):
    """The newest gate record of a version's archive: ``passed``, ``waived`` (every failed
    gate waived), ``failed`` or ``not validated``."""

    model_config = ConfigDict(frozen=True)

    status: str
    failed: list[str]
    waived: list[str]
    record: int | None
    at: datetime | None


class VersionItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    stage: str
    aliases: list[str]
    author: str
    created_at: datetime
    archived_at: datetime | None
    flavor: str
    description: str
    metrics: dict[str, float]
    approvals: list[ApprovalItem]
    gate: GateStatus


class AliasNow(BaseModel):
    model_config = ConfigDict(frozen=True)

    alias: str
    version: int
    since: datetime
    by: str


class AliasEvent(BaseModel):
    """One move of an alias: ``action`` is ``set``, ``rollback`` or ``remove``."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    alias: str
    action: str
    version: int | None
    previous_version: int | None
    by: str
    reason: str


class TrafficItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    kind: str
    summary: str
    arms: list[dict[str, int | float | None]]
    shadow: int | None
    sticky: str | None
    at: datetime
    by: str
    reason: str
    active: bool


class AlertItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    rule: str
    severity: str
    version: int
    metric: str
    feature: str | None
    value: float
    threshold: float
    message: str
    created_at: datetime


class ProductionStep(BaseModel):
    """The production version from ``start`` (to the next step); ``None``: none."""

    model_config = ConfigDict(frozen=True)

    start: datetime
    version: int | None


class ModelPage(ModelFacts):
    created_at: datetime
    created_by: str
    health: Health
    live: LiveCriterion
    versions: list[VersionItem]
    aliases: list[AliasNow]
    timeline: list[AliasEvent]
    """Alias moves, newest first (at most ``TIMELINE_LIMIT``)."""
    production_steps: list[ProductionStep]
    """What was in production when, oldest first."""
    traffic: TrafficItem | None
    traffic_history: list[TrafficItem]
    alerts: list[AlertItem]
    plot: Series | None
    """The accepted metric (or the drift share) over the last ``PLOT_DAYS`` days."""
    plot_since: datetime
    plot_until: datetime


def model_page(
    store: Store, project: ProjectConfig, name: str, *, now: datetime | None = None
) -> ModelPage:
    """Everything the model page shows; ``NotFound`` for an unknown model."""
    now = now or datetime.now(UTC)
    registry, traffic = Registry(store, project), Traffic(store, project)
    infos = registry.versions(name)  # NotFound first, naming close models
    current, history = traffic.current(name), traffic.history(name, limit=HISTORY_LIMIT)
    with store.read() as session:
        model = session.get(Model, name)
        if model is None:  # deleted since the versions were read
            raise NotFound(f"There is no model '{name}'.")
        criterion = criterion_of(project, name, model.accept)
        health_row = session.get(ModelHealth, name)
        row = HealthRow.model_validate(health_row, from_attributes=True) if health_row else None
        n_alerts = open_alerts(session, [name]).get(name, 0)
        alerts = _alerts(session, name)
        approvals = _approvals(session, name)
        gates = _gates(session, name, {i.version.version: i.version.digest for i in infos})
        changes = session.scalars(
            select(AliasChange)
            .where(AliasChange.model_name == name)
            .order_by(AliasChange.id.desc())
            .limit(TIMELINE_LIMIT)
        ).all()
        production = session.execute(
            select(AliasChange.at, AliasChange.version, AliasChange.action)
            .where(AliasChange.model_name == name, AliasChange.alias == PRODUCTION)
            .order_by(AliasChange.id)
        ).all()
        since = now - timedelta(days=PLOT_DAYS)
        plot = _plot(session, name, criterion.metric if criterion else None, since, now)
        aliases_now = _aliases_now(session, name)
    health = judge(
        row,
        open_alerts=n_alerts,
        criterion=criterion,
        stale_after=stale_after(project, now).get(name, DEFAULT_STALE_AFTER),
        now=now,
    )
    return ModelPage(
        name=model.name,
        description=model.description or "",
        owner=model.owner,
        team=model.team or "",
        objective=objective_of(project, name, model.objective or ""),
        criterion=str(criterion) if criterion else None,
        created_at=model.created_at,
        created_by=model.created_by,
        health=health,
        live=health.live,
        versions=[
            VersionItem(
                version=i.version.version,
                stage=i.stage,
                aliases=list(i.aliases),
                author=i.version.author,
                created_at=i.version.created_at,
                archived_at=i.version.archived_at,
                flavor=i.version.flavor,
                description=i.version.description,
                metrics={
                    k: float(v)
                    for k, v in i.version.metrics.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                },
                approvals=approvals.get(i.version.version, []),
                gate=gates.get(i.version.version, _NOT_VALIDATED),
            )
            for i in infos
        ],
        aliases=aliases_now,
        timeline=[
            AliasEvent(
                at=c.at,
                alias=c.alias,
                action=c.action,
                version=c.version,
                previous_version=c.previous_version,
                by=c.by,
                reason=c.reason,
            )
            for c in changes
        ],
        production_steps=[
            ProductionStep(start=at, version=None if action == "remove" else version)
            for at, version, action in production
        ],
        traffic=_traffic_item(current) if current is not None else None,
        traffic_history=[_traffic_item(p) for p in history],
        alerts=alerts,
        plot=plot,
        plot_since=since,
        plot_until=now,
    )


_NOT_VALIDATED = GateStatus(status="not validated", failed=[], waived=[], record=None, at=None)


def _aliases_now(session: Session, name: str) -> list[AliasNow]:
    rows = session.scalars(select(Alias).where(Alias.model_name == name).order_by(Alias.alias))
    return [
        AliasNow(alias=a.alias, version=a.version, since=a.updated_at, by=a.updated_by)
        for a in rows
    ]


def _approvals(session: Session, name: str) -> dict[int, list[ApprovalItem]]:
    out: dict[int, list[ApprovalItem]] = {}
    rows = session.scalars(
        select(Approval).where(Approval.model_name == name).order_by(Approval.id)
    )
    for a in rows:
        out.setdefault(a.version, []).append(
            ApprovalItem(approver=a.approver, at=a.created_at, reason=a.reason)
        )
    return out


def _gates(session: Session, name: str, digests: dict[int, str]) -> dict[int, GateStatus]:
    """The newest gate record per version for its current digest, with its waivers."""
    latest: dict[int, GateRecord] = {}
    for record in session.scalars(
        select(GateRecord).where(GateRecord.model_name == name).order_by(GateRecord.id.desc())
    ):
        if record.digest == digests.get(record.version) and record.version not in latest:
            latest[record.version] = record
    waived: dict[int, set[str]] = {}
    for w in session.scalars(select(Waiver).where(Waiver.model_name == name)):
        if w.digest == digests.get(w.version):
            waived.setdefault(w.version, set()).add(w.gate)
    out = {}
    for version, record in latest.items():
        failed = [str(g) for g in record.failed]
        done = sorted(waived.get(version, set()) & set(failed))
        status = "passed" if record.passed else "waived" if set(failed) <= set(done) else "failed"
        out[version] = GateStatus(
            status=status, failed=failed, waived=done, record=record.id, at=record.created_at
        )
    return out


def _alerts(session: Session, name: str) -> list[AlertItem]:
    rows = session.scalars(
        select(AlertRecord)
        .where(AlertRecord.model_name == name, AlertRecord.acknowledged_at.is_(None))
        .order_by(AlertRecord.created_at.desc())
        .limit(HISTORY_LIMIT)
    )
    return [AlertItem.model_validate(a, from_attributes=True) for a in rows]


def _plot(
    session: Session, name: str, metric: str | None, since: datetime, until: datetime
) -> Series | None:
    """The accepted metric with its interval when stored in the range, else the drift share."""
    if metric is not None:
        names = (metric, f"{metric}.ci_low", f"{metric}.ci_high")
        found = read_series(session, name, metrics=names, features=["*"], since=since, until=until)
        rows = found.get((metric, "*"))
        if rows:
            return to_series(
                metric,
                "*",
                rows,
                lower=found.get((f"{metric}.ci_low", "*"), []),
                upper=found.get((f"{metric}.ci_high", "*"), []),
            )
    found = read_series(
        session, name, metrics=["drift_share"], features=["*"], since=since, until=until
    )
    rows = found.get(("drift_share", "*"))
    return to_series("drift_share", "*", rows) if rows else None


def _traffic_item(policy: Policy) -> TrafficItem:
    return TrafficItem(
        id=policy.id,
        kind=policy.kind,
        summary=policy.describe(),
        arms=[a.to_json() for a in policy.arms],
        shadow=policy.shadow,
        sticky=policy.sticky,
        at=policy.created_at,
        by=policy.created_by,
        reason=policy.reason,
        active=policy.active,
    )
