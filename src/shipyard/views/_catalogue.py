"""The catalogue: every model across teams, its owner and team, objective and criterion, stage
and production version, and its health in plain words; searched, filtered, paginated.

Two reads whatever the number of models: one query joining ``models`` with their production
and staging aliases, newest version and ``model_health`` row, and one grouped count of open
(unacknowledged) alerts.

>>> page = catalogue(store, project, q="churn", team="retention")  # doctest: +SKIP
>>> [(m.name, m.health.label, m.health.reasons) for m in page.models]  # doctest: +SKIP
[('churn', 'needs attention', ['2 features drifted: age, plan'])]
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from shipyard.config import ProjectConfig
from shipyard.errors import InvalidInput
from shipyard.store import Store
from shipyard.store.tables import AlertRecord, Alias, Model, ModelHealth, ModelVersion
from shipyard.views._health import (
    DEFAULT_STALE_AFTER,
    Health,
    HealthRow,
    criterion_of,
    judge,
    objective_of,
    stale_after,
)

T = TypeVar("T")
#: Models per catalogue page.
PAGE_SIZE = 50
ModelStage = Literal["production", "staging", "candidate", "none"]
STAGE_FILTERS: tuple[str, ...] = ("production", "staging", "candidate", "none")
HEALTH_FILTERS: tuple[str, ...] = ("healthy", "attention", "unknown")


class ModelFacts(BaseModel):
    """What the registry and shipyard.toml say of a model: its description, owner and team,
    business objective and acceptance criterion (the file's over the recorded ones)."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    owner: str | None
    team: str
    objective: str
    criterion: str | None


class CatalogueModel(ModelFacts):
    """One model as the catalogue lists it."""

    stage: ModelStage
    """``production`` (a production alias), ``staging``, ``candidate`` (versions, no alias),
    ``none`` (no version yet)."""
    production: int | None
    staging: int | None
    latest_version: int | None
    health: Health
    open_alerts: int
    last_monitored: datetime | None


class Catalogue(BaseModel):
    """One page of the catalogue and the filters that made it."""

    model_config = ConfigDict(frozen=True)

    models: list[CatalogueModel]
    total: int
    page: int
    pages: int
    page_size: int
    q: str
    team: str
    stage: str
    health: str
    teams: list[str]
    """Every team with a model (for the filter)."""


def catalogue(
    store: Store,
    project: ProjectConfig,
    *,
    q: str = "",
    team: str = "",
    stage: str = "",
    health: str = "",
    page: int = 1,
    now: datetime | None = None,
) -> Catalogue:
    """Page ``page`` (from 1) of the models matching ``q`` (in name, description, objective,
    team or owner), ``team``, ``stage`` (``STAGE_FILTERS``) and ``health`` (``HEALTH_FILTERS``),
    by name. Raises ``InvalidInput`` for an unknown filter value or a page below 1."""
    q, team = q.strip(), team.strip()
    if stage and stage not in STAGE_FILTERS:
        raise InvalidInput(f"stage must be one of {', '.join(STAGE_FILTERS)}. Got {stage!r}.")
    if health and health not in HEALTH_FILTERS:
        raise InvalidInput(f"health must be one of {', '.join(HEALTH_FILTERS)}. Got {health!r}.")
    if page < 1:
        raise InvalidInput(f"page must be 1 or more. Got {page}.")
    if len(q) > 200:
        raise InvalidInput("The search text must be at most 200 characters.")
    now = now or datetime.now(UTC)
    with store.read() as session:
        rows = session.execute(_listing(q, team, stage)).mappings().all()
        teams = sorted(t for t in session.scalars(select(Model.team).distinct()) if t)
        names = None if health else [r["name"] for r in _page(rows, page)]
        alerts = open_alerts(session, names)
        healths = _health_rows(session, names)
    stale = stale_after(project, now)
    models = []
    for r in rows if health else _page(rows, page):
        criterion = criterion_of(project, r["name"], r["accept"])
        judged = judge(
            healths.get(r["name"]),
            open_alerts=alerts.get(r["name"], 0),
            criterion=criterion,
            stale_after=stale.get(r["name"], DEFAULT_STALE_AFTER),
            now=now,
        )
        if health and judged.status != health:
            continue
        models.append(
            CatalogueModel(
                name=r["name"],
                description=r["description"] or "",
                owner=r["owner"],
                team=r["team"] or "",
                objective=objective_of(project, r["name"], r["objective"] or ""),
                criterion=str(criterion) if criterion is not None else None,
                stage=_stage(r["production"], r["staging"], r["latest"]),
                production=r["production"],
                staging=r["staging"],
                latest_version=r["latest"],
                health=judged,
                open_alerts=judged.open_alerts,
                last_monitored=judged.last_monitored,
            )
        )
    total = len(models) if health else len(rows)
    if health:
        models = _page(models, page)
    return Catalogue(
        models=models,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        page_size=PAGE_SIZE,
        q=q,
        team=team,
        stage=stage,
        health=health,
        teams=teams,
    )


def _listing(q: str, team: str, stage: str) -> Select[Any]:
    """Models matching the filters, with their production and staging versions and their
    newest version number, by name (no JSON column: the page's health is read apart)."""
    production, staging = aliased(Alias), aliased(Alias)
    latest = (
        select(ModelVersion.model_name, func.max(ModelVersion.version).label("latest"))
        .group_by(ModelVersion.model_name)
        .subquery()
    )
    query = (
        select(
            Model.name,
            Model.description,
            Model.owner,
            Model.team,
            Model.objective,
            Model.accept,
            production.version.label("production"),
            staging.version.label("staging"),
            latest.c.latest,
        )
        .outerjoin(
            production, and_(production.model_name == Model.name, production.alias == "production")
        )
        .outerjoin(staging, and_(staging.model_name == Model.name, staging.alias == "staging"))
        .outerjoin(latest, latest.c.model_name == Model.name)
        .order_by(Model.name)
    )
    if q:
        escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        columns = (Model.name, Model.description, Model.objective, Model.team, Model.owner)
        query = query.where(
            or_(*(func.lower(c).like(f"%{escaped}%", escape="\\") for c in columns))
        )
    if team:
        query = query.where(Model.team == team)
    if stage == "production":
        query = query.where(production.version.is_not(None))
    elif stage == "staging":
        query = query.where(production.version.is_(None), staging.version.is_not(None))
    elif stage == "candidate":
        query = query.where(
            production.version.is_(None), staging.version.is_(None), latest.c.latest.is_not(None)
        )
    elif stage == "none":
        query = query.where(latest.c.latest.is_(None))
    return query


def _health_rows(session: Session, names: list[str] | None) -> dict[str, HealthRow]:
    """The ``model_health`` rows of ``names`` (every model's for ``None``)."""
    if names == []:
        return {}
    query = select(ModelHealth)
    if names is not None:
        query = query.where(ModelHealth.model_name.in_(names))
    return {
        row.model_name: HealthRow.model_validate(row, from_attributes=True)
        for row in session.scalars(query)
    }


def _page(items: Sequence[T], page: int) -> list[T]:
    return list(items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE])


def open_alerts(session: Session, names: list[str] | None) -> dict[str, int]:
    """Unacknowledged alerts per model (of ``names``; every model for ``None``)."""
    if names == []:
        return {}
    query = (
        select(AlertRecord.model_name, func.count())
        .where(AlertRecord.acknowledged_at.is_(None))
        .group_by(AlertRecord.model_name)
    )
    if names is not None:
        query = query.where(AlertRecord.model_name.in_(names))
    return {name: int(n) for name, n in session.execute(query)}


def _stage(production: int | None, staging: int | None, latest: int | None) -> ModelStage:
    if production is not None:
        return "production"
    if staging is not None:
        return "staging"
    return "candidate" if latest is not None else "none"
