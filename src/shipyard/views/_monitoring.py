"""The monitoring page: drift per feature over time, data quality, performance (realised and
estimated, with intervals), service per arm, job runs, alias changes, and the breached windows
to drill down into (``window_detail``: one run's results and sample rows of its log window).

Every read is bounded: ``days`` (at most ``MAX_DAYS``) through the series index, each series
thinned to ``MAX_POINTS``, the flagged points and job runs capped.

>>> page = monitoring_page(store, project, "churn", days=30, feature="age")  # doctest: +SKIP
>>> [(d.feature, d.flagged) for d in page.drift]  # doctest: +SKIP
[('age', 12), ('income', 0), ('plan', 0)]
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from shipyard.config import ProjectConfig
from shipyard.errors import InvalidInput, NotFound
from shipyard.store import Store
from shipyard.store.tables import Model, ModelHealth, MonitoringResult
from shipyard.views._series import MAX_DAYS, MAX_POINTS, Row, Series, read_series, to_series
from shipyard.views._timeline import (
    AliasMark,
    JobRunItem,
    job_names,
    job_runs,
    production_changes,
)

#: Metrics that judge the whole dataset or the model, stored with feature ``*``.
PERFORMANCE = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "mae", "rmse", "r2")
ESTIMATED = tuple(f"estimated_{m}" for m in PERFORMANCE)
SERVICE = ("requests", "error_rate", "latency_p50", "latency_p95", "latency_p99")
QUALITY = tuple(
    f"quality.{q}"
    for q in (
        "absent",
        "type_violations",
        "missing",
        "nan",
        "posinf",
        "neginf",
        "out_of_range",
        "unseen",
    )
)
#: Flagged points read at most.
FLAGGED_LIMIT = 1000
BREACHED_LIMIT = 50


class FeatureFlags(BaseModel):
    """How often one check of one feature was flagged in the range."""

    model_config = ConfigDict(frozen=True)

    feature: str
    check: str
    """``drift`` or a quality check (``missing``, ``out_of_range``...)."""
    windows: int
    flagged: int
    last_flagged: datetime | None


class FlaggedPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    t: datetime
    feature: str
    check: str
    value: float | None
    run: str


class MonitoringPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    days: int
    since: datetime
    until: datetime
    features: list[str]
    """Features of the newest monitored window."""
    feature: str | None
    """The feature whose scores are plotted (``?feature=``; default: the most flagged)."""
    drift_share: Series | None
    drift: list[FeatureFlags]
    quality: list[FeatureFlags]
    flagged: list[FlaggedPoint]
    """Flagged drift and quality points, newest first (at most ``FLAGGED_LIMIT``)."""
    feature_scores: list[Series]
    """Every drift score and quality share of ``feature``."""
    performance: list[Series]
    """Realised metrics with ``lower``/``upper``, then ``estimated_*`` (CBPE), then
    ``label_coverage``."""
    service: list[Series]
    """Per arm (``*``: the version's total, ``arm:<name>``): requests, error rate, latency."""
    jobs: list[JobRunItem]
    production_version_at_start: int | None
    alias_changes: list[AliasMark]
    breached: list[FlaggedPoint]
    """The newest windows with a flag, one per run (the drill-down links)."""
    max_points: int = MAX_POINTS


def check_days(days: int) -> int:
    """``days`` if in [1, ``MAX_DAYS``]; else ``InvalidInput``."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}. Got {days}.")
    return days


def monitoring_page(
    store: Store,
    project: ProjectConfig,
    name: str,
    *,
    days: int = 30,
    feature: str | None = None,
    now: datetime | None = None,
) -> MonitoringPage:
    """The monitoring of ``name`` over the last ``days``; ``NotFound`` for an unknown model or
    a ``feature`` it does not have, ``InvalidInput`` for ``days`` out of range."""
    check_days(days)
    until = now or datetime.now(UTC)
    since = until - timedelta(days=days)
    with store.read() as session:
        if session.get(Model, name) is None:
            raise _unknown(session, name)
        features, arms, scores = _newest_names(session, name)
        flags = _flags(session, name, features, since, until)
        flagged = _flagged_points(session, name, features, since, until)
        drift = [f for f in flags if f.check == "drift"]
        if feature and feature not in features:
            raise NotFound(
                f"Model '{name}' has no monitored feature '{feature}'; its features are "
                f"{', '.join(features) or 'none yet'}."
            )
        chosen = feature or (
            max(drift, key=lambda f: (f.flagged, f.feature == features[0])).feature
            if drift
            else (features[0] if features else None)
        )
        dataset = read_series(
            session,
            name,
            metrics=[
                "drift_share",
                "label_coverage",
                *PERFORMANCE,
                *ESTIMATED,
                *(f"{m}.ci_{b}" for m in PERFORMANCE + ESTIMATED for b in ("low", "high")),
                *SERVICE,
            ],
            features=["*", *arms],
            since=since,
            until=until,
        )
        feature_rows = (
            read_series(
                session,
                name,
                metrics=[*scores.get(chosen, []), *QUALITY],
                features=[chosen],
                since=since,
                until=until,
            )
            if chosen
            else {}
        )
        jobs = job_runs(session, job_names(project, name), since)
        at_start, marks = production_changes(session, name, since, until)
    share = dataset.get(("drift_share", "*"))
    return MonitoringPage(
        name=name,
        days=days,
        since=since,
        until=until,
        features=features,
        feature=chosen,
        drift_share=to_series("drift_share", "*", share) if share else None,
        drift=drift,
        quality=[f for f in flags if f.check != "drift"],
        flagged=flagged,
        feature_scores=[
            to_series(metric, f, rows) for (metric, f), rows in sorted(feature_rows.items())
        ],
        performance=_performance(dataset),
        service=[
            to_series(metric, f, rows)
            for (metric, f), rows in sorted(dataset.items(), key=lambda kv: (kv[0][1], kv[0][0]))
            if metric in SERVICE
        ],
        jobs=jobs,
        production_version_at_start=at_start,
        alias_changes=marks,
        breached=_breached(flagged, dataset),
    )


def _unknown(session: Session, name: str) -> NotFound:
    import difflib

    close = difflib.get_close_matches(name, list(session.scalars(select(Model.name))), n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return NotFound(f"There is no model '{name}'.{hint}")


def _newest_names(session: Session, name: str) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """The features, arms (``arm:<name>``) and per-feature drift scores of the newest run."""
    run = session.scalar(select(ModelHealth.run_id).where(ModelHealth.model_name == name))
    if run is None:  # results stored before model_health existed
        run = session.scalar(
            select(MonitoringResult.run_id)
            .where(
                MonitoringResult.model_name == name,
                MonitoringResult.metric == "drift_share",
                MonitoringResult.feature == "*",
            )
            .order_by(MonitoringResult.window_end.desc())
            .limit(1)
        )
    if run is None:
        return [], [], {}
    features: list[str] = []
    arms: set[str] = set()
    scores: dict[str, list[str]] = {}
    pairs = session.execute(
        select(MonitoringResult.metric, MonitoringResult.feature).where(
            MonitoringResult.run_id == run
        )
    )
    for metric, feature in pairs:
        if feature.startswith("arm:"):
            arms.add(feature)
        elif feature == "*":
            continue
        elif metric == "drift":
            features.append(feature)
        elif not metric.startswith("quality."):
            scores.setdefault(feature, []).append(metric)
    return sorted(features), sorted(arms), scores


def _checks_of(
    name: str, features: list[str], since: datetime, until: datetime
) -> list[ColumnElement[bool]]:
    """The drift verdicts and quality checks of ``features`` in ``[since, until]``."""
    return [
        MonitoringResult.model_name == name,
        MonitoringResult.metric.in_(("drift", *QUALITY)),
        MonitoringResult.feature.in_(features),
        MonitoringResult.window_end >= since,
        MonitoringResult.window_end <= until,
    ]


def _flags(
    session: Session, name: str, features: list[str], since: datetime, until: datetime
) -> list[FeatureFlags]:
    if not features:
        return []
    flagged = func.sum(case((MonitoringResult.flagged, 1), else_=0))
    last = func.max(case((MonitoringResult.flagged, MonitoringResult.window_end), else_=None))
    query = (
        select(
            MonitoringResult.feature,
            MonitoringResult.metric,
            func.count(),
            flagged,
            last,
        )
        .where(*_checks_of(name, features, since, until))
        .group_by(MonitoringResult.feature, MonitoringResult.metric)
    )
    out = []
    for feature, metric, windows, n, at in session.execute(query):
        if metric != "drift" and not n:
            continue  # a quality check that never breached: nothing to show
        out.append(
            FeatureFlags(
                feature=feature,
                check=metric.removeprefix("quality."),
                windows=int(windows),
                flagged=int(n or 0),
                last_flagged=_aware(at),
            )
        )
    return sorted(out, key=lambda f: (f.check != "drift", f.feature, f.check))


def _aware(value: datetime | str | None) -> datetime | None:
    """A ``max()`` of a datetime column comes back as text on SQLite."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _flagged_points(
    session: Session, name: str, features: list[str], since: datetime, until: datetime
) -> list[FlaggedPoint]:
    if not features:
        return []
    rows = session.execute(
        select(
            MonitoringResult.window_end,
            MonitoringResult.feature,
            MonitoringResult.metric,
            MonitoringResult.value,
            MonitoringResult.run_id,
        )
        .where(*_checks_of(name, features, since, until), MonitoringResult.flagged.is_(True))
        .order_by(MonitoringResult.window_end.desc())
        .limit(FLAGGED_LIMIT)
    )
    return [
        FlaggedPoint(t=t, feature=f, check=m.removeprefix("quality."), value=v, run=run)
        for t, f, m, v, run in rows
    ]


def _performance(dataset: dict[tuple[str, str], list[Row]]) -> list[Series]:
    out = []
    for metric in (*PERFORMANCE, *ESTIMATED, "label_coverage"):
        rows = dataset.get((metric, "*"))
        if not rows:
            continue
        out.append(
            to_series(
                metric,
                "*",
                rows,
                lower=dataset.get((f"{metric}.ci_low", "*"), []),
                upper=dataset.get((f"{metric}.ci_high", "*"), []),
            )
        )
    return out


def _breached(
    flagged: list[FlaggedPoint],
    dataset: dict[tuple[str, str], list[Row]],
) -> list[FlaggedPoint]:
    """The newest flagged windows, one entry per run (a flagged drift share counts too)."""
    points = list(flagged)
    for t, value, is_flagged, run, _, _ in dataset.get(("drift_share", "*"), []):
        if is_flagged:
            points.append(FlaggedPoint(t=t, feature="*", check="drift_share", value=value, run=run))
    seen: set[str] = set()
    out = []
    for point in sorted(points, key=lambda p: p.t, reverse=True):
        if point.run in seen:
            continue
        seen.add(point.run)
        out.append(point)
        if len(out) == BREACHED_LIMIT:
            break
    return out
