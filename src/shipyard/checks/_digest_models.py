"""The facts a digest states about each model: production version, key metric against the
acceptance criterion, drift and quality in words, alerts since the last digest and the plot,
read in one transaction with one query per table (plus two bounded series per model).

The metric comes from the model's ``model_health`` row when monitoring wrote one, else from
the newest ``monitoring_results`` row of that metric; the plot shows the last ``PLOT_DAYS``
days of it (or of the share of drifted features when the model has no criterion).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import select

from shipyard.checks._digest_plot import metric_png
from shipyard.config import ProjectConfig, parse_criterion
from shipyard.store import Store
from shipyard.store.tables import AlertRecord, Alias, Model, ModelHealth, MonitoringResult

#: Days of history each plot shows.
PLOT_DAYS = 30
DATASET = "*"  # the ``feature`` of dataset-level monitoring rows


@dataclass(frozen=True)
class DigestAlert:
    """An alert raised since the last digest."""

    at: datetime
    severity: str
    message: str


@dataclass
class ModelDigest:
    """What the digest says about one model."""

    name: str
    version: int | None
    url: str
    criterion: str | None = None
    metric: str | None = None
    value: float | None = None
    passes: bool | None = None
    drift: str = "not monitored yet"
    quality: str = ""
    status: str = "unknown"  # healthy | attention | unknown
    alerts: list[DigestAlert] = field(default_factory=list)
    plot: bytes | None = None
    plot_label: str = ""
    cid: str = ""


def version_words(version: int | None) -> str:
    """``production v3``, or that there is none."""
    return "no production version" if version is None else f"production v{version}"


def metric_words(m: ModelDigest) -> str:
    """``roc_auc = 0.775: misses the acceptance criterion roc_auc >= 0.8``."""
    if m.value is None:
        return f"{m.metric}: no value yet (criterion {m.criterion})"
    verdict = {True: "meets", False: "misses", None: "no criterion for"}[m.passes]
    target = f" {m.criterion}" if m.criterion else ""
    return f"{m.metric} = {m.value:.3f}: {verdict} the acceptance criterion{target}"


def model_digests(
    store: Store,
    project: ProjectConfig,
    names: list[str],
    *,
    job: str,
    since: datetime,
    now: datetime,
    link: str,
) -> list[ModelDigest]:
    """What the digest of ``[since, now]`` says about each of ``names``."""
    base = link.rstrip("/")
    models = []
    with store.read() as session:
        rows = {m.name: m for m in session.scalars(select(Model).where(Model.name.in_(names)))}
        production = dict(
            session.execute(
                select(Alias.model_name, Alias.version).where(
                    Alias.model_name.in_(names), Alias.alias == "production"
                )
            ).all()
        )
        health = {
            h.model_name: h
            for h in session.scalars(select(ModelHealth).where(ModelHealth.model_name.in_(names)))
        }
        alerts = session.scalars(
            select(AlertRecord)
            .where(AlertRecord.model_name.in_(names), AlertRecord.created_at >= since)
            .order_by(AlertRecord.created_at.desc())
        ).all()
        for i, name in enumerate(names):
            m = ModelDigest(
                name=name,
                version=production.get(name),
                url=f"{base}/ui/models/{quote(name)}",
                cid=f"plot{i}.{job}@shipyard",
            )
            m.alerts = [
                DigestAlert(a.created_at, a.severity, a.message)
                for a in alerts
                if a.model_name == name
            ]
            _fill(session, m, project, rows[name], health.get(name), now)
            models.append(m)
    return models


def _fill(
    session: Any,
    m: ModelDigest,
    project: ProjectConfig,
    row: Model,
    health: ModelHealth | None,
    now: datetime,
) -> None:
    """Metric, words, status and plot of one model."""
    table = project.models.get(m.name)
    text = (table.accept if table is not None else None) or row.accept
    criterion = parse_criterion(text) if text else None
    start = now - timedelta(days=PLOT_DAYS)

    def series(metric: str) -> list[tuple[datetime, float | None, float | None]]:
        return [
            (r.window_end, r.value, r.threshold)
            for r in session.execute(
                select(
                    MonitoringResult.window_end, MonitoringResult.value, MonitoringResult.threshold
                )
                .where(
                    MonitoringResult.model_name == m.name,
                    MonitoringResult.metric == metric,
                    MonitoringResult.feature == DATASET,
                    MonitoringResult.window_end >= start,
                    MonitoringResult.window_end <= now,
                )
                .order_by(MonitoringResult.window_end)
            )
        ]

    performance = series(criterion.metric) if criterion else []
    if criterion is not None:
        m.criterion, m.metric = str(criterion), criterion.metric
        stored = (health.performance or {}).get(criterion.metric) if health else None
        if isinstance(stored, dict) and stored.get("value") is not None:
            m.value = float(stored["value"])
        elif performance and performance[-1][1] is not None:
            m.value = performance[-1][1]
        m.passes = None if m.value is None else criterion.holds(m.value)
    if health is not None:
        drifted = list(health.drifted or [])
        m.drift = (
            f"drift in {len(drifted)} of {health.features} features ({', '.join(drifted[:5])})"
            if drifted
            else f"no drift in {health.features} features"
        )
        flagged = list(health.quality or [])
        m.quality = f"data quality: {', '.join(flagged[:5])}" if flagged else "data quality ok"
    else:
        share = series("drift_share")
        if share and share[-1][1] is not None:
            value, limit = share[-1][1], share[-1][2]
            over = limit is not None and value > limit
            m.drift = f"{value:.0%} of features drifted" + (" (above the limit)" if over else "")
    attention = (
        m.passes is False
        or bool(m.alerts)
        or (health is not None and bool(health.drifted or health.quality))
        or "above the limit" in m.drift
    )
    known = m.passes is not None or health is not None or m.drift != "not monitored yet"
    m.status = "attention" if attention else "healthy" if known else "unknown"
    if criterion is not None and performance:
        m.plot = metric_png(
            [t for t, _, _ in performance],
            [v for _, v, _ in performance],
            limit=criterion.value,
            label=f"{criterion.metric}, last {PLOT_DAYS} days",
            breach_above=not criterion.higher_is_better,
        )
        m.plot_label = f"{criterion.metric} over the last {PLOT_DAYS} days; dashed: {criterion}"
    else:
        share = series("drift_share")
        if share:
            limit = next((t for _, _, t in reversed(share) if t is not None), None)
            m.plot = metric_png(
                [t for t, _, _ in share],
                [v for _, v, _ in share],
                limit=limit,
                label=f"share of drifted features, last {PLOT_DAYS} days",
                breach_above=True,
            )
            m.plot_label = f"share of drifted features over the last {PLOT_DAYS} days"
