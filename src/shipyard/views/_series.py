"""Bounded reads of stored monitoring series: one query per group of series, through the
``(model_name, metric, feature, window_end)`` index, each series thinned to ``MAX_POINTS``.

A series is parallel lists (``t``, ``value``, ``flagged``, ``run``), the shape a plot and a
table both read without reshaping.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, Integer, case, cast, func, literal, select
from sqlalchemy.orm import Session

from shipyard.store.tables import MonitoringResult

#: Points kept per series (more are thinned, flagged points first).
MAX_POINTS = 1000
#: Days a monitoring page may look back.
MAX_DAYS = 365


class Series(BaseModel):
    """One metric of one feature (``*``: the dataset) over time; ``lower``/``upper`` are the
    interval of a performance metric (same length as ``t``, ``None`` where not stored)."""

    model_config = ConfigDict(frozen=True)

    metric: str
    feature: str
    t: list[datetime]
    value: list[float | None]
    flagged: list[bool]
    run: list[str]
    threshold: float | None = None
    lower: list[float | None] | None = None
    upper: list[float | None] | None = None
    points: int
    """Windows stored in the range (``len(t)`` is at most about ``MAX_POINTS``: a long range
    is read in time buckets, each point the mean of its bucket, flagged if any window was)."""

    @property
    def last(self) -> float | None:
        return self.value[-1] if self.value else None


Row = tuple[datetime, float | None, bool, str, float | None, int]
"""``(window_end, value, flagged, run_id, threshold, windows)``: one stored window, or the
``windows`` of one time bucket of a long range (mean value, flagged if any was, the run of a
flagged window if any)."""


def read_series(
    session: Session,
    model: str,
    *,
    metrics: Iterable[str],
    features: Iterable[str],
    since: datetime,
    until: datetime,
) -> dict[tuple[str, str], list[Row]]:
    """The stored windows of ``model`` for the ``metrics`` x ``features`` in ``[since,
    until]``, oldest first, keyed by (metric, feature). A range longer than ``MAX_POINTS``
    hours is read in ``MAX_POINTS`` time buckets, aggregated by the database, so a year of
    hourly windows costs the page a thousand rows per series, not nine thousand."""
    metrics, features = sorted(set(metrics)), sorted(set(features))
    if not metrics or not features:
        return {}
    where = (
        MonitoringResult.model_name == model,
        MonitoringResult.metric.in_(metrics),
        MonitoringResult.feature.in_(features),
        MonitoringResult.window_end >= since,
        MonitoringResult.window_end <= until,
    )
    span = (until - since).total_seconds()
    if span <= MAX_POINTS * 3600:
        query = (
            select(
                MonitoringResult.metric,
                MonitoringResult.feature,
                MonitoringResult.window_end,
                MonitoringResult.value,
                MonitoringResult.flagged,
                MonitoringResult.run_id,
                MonitoringResult.threshold,
                literal(1),
            )
            .where(*where)
            .order_by(MonitoringResult.window_end, MonitoringResult.id)
        )
    else:
        bucket = _bucket(session, math.ceil(span / MAX_POINTS)).label("bucket")
        flagged = func.max(case((MonitoringResult.flagged, 1), else_=0))
        run = func.coalesce(
            func.max(case((MonitoringResult.flagged, MonitoringResult.run_id), else_=None)),
            func.max(MonitoringResult.run_id),
        )
        query = (
            select(
                MonitoringResult.metric,
                MonitoringResult.feature,
                func.max(MonitoringResult.window_end),
                func.avg(MonitoringResult.value),
                flagged,
                run,
                func.max(MonitoringResult.threshold),
                func.count(),
            )
            .where(*where)
            .group_by(MonitoringResult.metric, MonitoringResult.feature, bucket)
            .order_by(bucket)
        )
    out: dict[tuple[str, str], list[Row]] = {}
    for metric, feature, end, value, is_flagged, run_id, threshold, n in session.execute(query):
        row = (end, value, bool(is_flagged), run_id, threshold, int(n))
        out.setdefault((metric, feature), []).append(row)
    return out


def _bucket(session: Session, seconds: int) -> ColumnElement[Any]:
    """The number of the ``seconds``-long time bucket of a window's end."""
    if session.get_bind().dialect.name == "postgresql":
        return func.floor(func.extract("epoch", MonitoringResult.window_end) / seconds)
    # SQLite keeps the time as text; integers divide to an integer
    return cast(func.strftime("%s", MonitoringResult.window_end), Integer) / seconds


def thin(rows: Sequence[Row], limit: int = MAX_POINTS) -> list[Row]:
    """At most ``limit`` rows in time order: per bucket of consecutive rows, a flagged one if
    any, else the one farthest from the series' median (spikes and drops stay visible).

    >>> from datetime import UTC, datetime, timedelta
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> rows = [(t0 + timedelta(hours=i), float(i == 7), i == 3, str(i), None, 1)
    ...         for i in range(10)]
    >>> [r[3] for r in thin(rows, 5)]
    ['0', '3', '4', '7', '8']
    """
    if len(rows) <= limit:
        return list(rows)
    size = math.ceil(len(rows) / limit)
    values = sorted(r[1] for r in rows if r[1] is not None)
    median = values[len(values) // 2] if values else 0.0
    kept = []
    for i in range(0, len(rows), size):
        bucket = rows[i : i + size]
        flagged = [r for r in bucket if r[2]]
        if flagged:
            kept.append(flagged[0])
            continue
        kept.append(max(bucket, key=lambda r: -1.0 if r[1] is None else abs(r[1] - median)))
    return kept


def to_series(
    metric: str,
    feature: str,
    rows: Sequence[Row],
    *,
    lower: Sequence[Row] = (),
    upper: Sequence[Row] = (),
) -> Series:
    """A ``Series`` of ``rows`` (thinned); ``lower``/``upper`` are matched by window end."""
    kept = thin(rows)
    lows = {r[0]: r[1] for r in lower}
    highs = {r[0]: r[1] for r in upper}
    thresholds = [r[4] for r in rows if r[4] is not None]
    return Series(
        metric=metric,
        feature=feature,
        t=[r[0] for r in kept],
        value=[r[1] for r in kept],
        flagged=[r[2] for r in kept],
        run=[r[3] for r in kept],
        threshold=thresholds[-1] if thresholds else None,
        lower=[lows.get(r[0]) for r in kept] if lower else None,
        upper=[highs.get(r[0]) for r in kept] if upper else None,
        points=sum(r[5] for r in rows),
    )
