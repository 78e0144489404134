"""The ``model_health`` row of a model: the newest window's outcome in one row, written by the
same transaction that stores the window's results (``MonitoringResults.save``), so the UI's
catalogue reads one row per model instead of a year of series.

An older window saved later (a backfill, a late job) never replaces a newer one: the upsert
only updates when its window ends at or after the stored one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from shipyard.monitoring._cbpe import PREFIX as ESTIMATED
from shipyard.monitoring._performance import CLASSIFIER_METRICS, REGRESSOR_METRICS
from shipyard.store.tables import ModelHealth, MonitoringResult, utcnow

#: The stored metrics that are model performance (realised; ``estimated_<name>`` too).
PERFORMANCE_METRICS = frozenset(CLASSIFIER_METRICS + REGRESSOR_METRICS)
_QUALITY = "quality."
_BOUNDS = {".ci_low": "lower", ".ci_high": "upper"}


def is_performance(metric: str) -> bool:
    """``accuracy``, ``rmse``, ``estimated_f1``...: a performance metric (not its bounds)."""
    return metric.removeprefix(ESTIMATED) in PERFORMANCE_METRICS


def health_values(rows: Sequence[MonitoringResult]) -> dict[str, Any]:
    """The health columns of one window's rows: the features whose ``drift`` verdict is
    flagged, the flagged quality checks (``"income: missing"``), the performance metrics
    with their interval (``{"value", "lower", "upper", "flagged"}``) and the label coverage.

    >>> from datetime import UTC, datetime
    >>> def r(metric, feature, value, flagged=False):
    ...     return MonitoringResult(metric=metric, feature=feature, value=value, flagged=flagged)
    >>> v = health_values([r("drift", "age", 1.0, True), r("drift", "plan", 0.0),
    ...     r("quality.missing", "income", 0.2, True), r("accuracy", "*", 0.8),
    ...     r("accuracy.ci_low", "*", 0.7), r("accuracy.ci_high", "*", 0.9)])
    >>> v["drifted"], v["quality"], v["features"], v["performance"]["accuracy"]["lower"]
    (['age'], ['income: missing'], 2, 0.7)
    """
    drifted: list[str] = []
    quality: list[str] = []
    features = 0
    performance: dict[str, dict[str, Any]] = {}
    coverage: float | None = None
    bounds: list[tuple[str, str, float | None]] = []
    for row in rows:
        metric = row.metric
        if metric == "drift" and row.feature != "*":
            features += 1
            if row.flagged:
                drifted.append(row.feature)
        elif metric.startswith(_QUALITY) and row.flagged:
            quality.append(f"{row.feature}: {metric.removeprefix(_QUALITY)}")
        elif metric == "label_coverage" and row.feature == "*":
            coverage = row.value
        elif row.feature == "*" and is_performance(metric):
            performance[metric] = {
                "value": row.value,
                "lower": None,
                "upper": None,
                "flagged": bool(row.flagged),
            }
        elif row.feature == "*":
            for suffix, key in _BOUNDS.items():
                if metric.endswith(suffix) and is_performance(metric.removesuffix(suffix)):
                    bounds.append((metric.removesuffix(suffix), key, row.value))
    for metric, key, value in bounds:
        if metric in performance:
            performance[metric][key] = value
    return {
        "features": features,
        "drifted": drifted,
        "quality": quality,
        "performance": performance,
        "label_coverage": coverage,
    }


def upsert_health(
    session: Session,
    rows: Sequence[MonitoringResult],
    *,
    model: str,
    version: int,
    run_id: str,
    window_start: datetime | None,
    window_end: datetime,
    n_rows: int,
) -> None:
    """Insert or update ``model``'s health row in the caller's transaction, unless the stored
    row describes a window that ends later (one statement: concurrent savers cannot interleave
    a read and a write)."""
    values = {
        "model_name": model,
        "version": version,
        "run_id": run_id,
        "window_start": window_start,
        "window_end": window_end,
        "rows": n_rows,
        "updated_at": utcnow(),
        **health_values(rows),
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(ModelHealth).values(**values)
    update = {k: statement.excluded[k] for k in values if k != "model_name"}
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["model_name"],
            set_=update,
            where=ModelHealth.window_end <= statement.excluded.window_end,
        )
    )
