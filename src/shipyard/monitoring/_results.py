"""Monitoring results as time series in the store: one row per window, feature and metric."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from shipyard.audit import append_event
from shipyard.monitoring._health import upsert_health
from shipyard.monitoring._report import DriftReport
from shipyard.monitoring._rows import MetricRow
from shipyard.store import Store
from shipyard.store.tables import MonitoringResult, utcnow

#: The ``feature`` of dataset-level rows.
DATASET = "*"


def report_rows(
    report: DriftReport,
    *,
    run_id: str,
    model: str,
    version: int,
    source: str,
    window_start: datetime | None,
    window_end: datetime,
    extra: Sequence[MetricRow] = (),
) -> list[MonitoringResult]:
    """Flatten a report: every test score (``psi``, ``ks``...), the ``drift`` verdict and every
    quality share (``quality.missing``...) per feature, plus dataset-level rows."""
    now = utcnow()

    def row(
        metric: str,
        feature: str,
        value: float | None,
        threshold: float | None,
        flagged: bool,
        n: int | None = None,
    ) -> MonitoringResult:
        return MonitoringResult(
            run_id=run_id,
            model_name=model,
            version=version,
            source=source,
            window_start=window_start,
            window_end=window_end,
            metric=metric,
            feature=feature,
            value=value,
            threshold=threshold,
            flagged=flagged,
            rows=report.n_rows if n is None else n,
            seconds=report.elapsed_seconds,
            created_at=now,
        )

    rows = [
        row("drift_share", DATASET, report.drift_share, report.config.drift_share, report.drifted),
        row("rows", DATASET, float(report.n_rows), None, False),
    ]
    for f in report.features:
        rows.append(row("drift", f.name, float(f.drifted), None, f.drifted))
        rows.extend(row(s.name, f.name, s.value, s.threshold, s.drifted) for s in f.scores)
        rows.extend(
            row(f"quality.{q.name}", f.name, q.share, q.limit, q.breached) for q in f.quality
        )
    rows.extend(row(*extra_row) for extra_row in extra)  # performance, service (MetricRow)
    return rows


class MonitoringResults:
    """Stores monitoring reports and reads metric series back.

    >>> results = MonitoringResults(store)  # doctest: +SKIP
    >>> results.history("churn", metric="psi", feature="age")  # doctest: +SKIP
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def save(
        self,
        report: DriftReport,
        *,
        model: str,
        version: int,
        source: str,
        actor: str,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        extra: Sequence[MetricRow] = (),
    ) -> str:
        """Store every row of ``report`` in one transaction (audited), with the model's
        ``model_health`` row when this window is its newest; returns the run id."""
        run_id = uuid.uuid4().hex
        end = window_end or utcnow()
        rows = report_rows(
            report,
            run_id=run_id,
            model=model,
            version=version,
            source=source,
            window_start=window_start,
            window_end=end,
            extra=extra,
        )
        with self.store.write() as session:
            session.add_all(rows)
            upsert_health(
                session,
                rows,
                model=model,
                version=version,
                run_id=run_id,
                window_start=window_start,
                window_end=end,
                n_rows=report.n_rows,
            )
            append_event(
                session,
                actor=actor,
                action="monitoring.completed",
                subject=f"model:{model}/{version}",
                details={
                    "run_id": run_id,
                    "source": source,
                    "rows": report.n_rows,
                    "drifted": report.drifted,
                    "flagged": report.flagged(),
                    "seconds": round(report.elapsed_seconds, 3),
                },
            )
        return run_id

    def history(
        self,
        model: str,
        *,
        metric: str,
        feature: str | None = None,
        version: int | None = None,
        limit: int = 1000,
    ) -> Sequence[MonitoringResult]:
        """The newest ``limit`` values of one metric, oldest first."""
        query = (
            select(MonitoringResult)
            .where(MonitoringResult.model_name == model, MonitoringResult.metric == metric)
            .order_by(MonitoringResult.window_end.desc(), MonitoringResult.id.desc())
            .limit(limit)
        )
        if feature is not None:
            query = query.where(MonitoringResult.feature == feature)
        if version is not None:
            query = query.where(MonitoringResult.version == version)
        with self.store.read() as session:
            return list(reversed(session.scalars(query).all()))
