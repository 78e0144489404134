"""One stored metric value that is not part of a drift report (performance, service).

>>> MetricRow("accuracy", "*", 0.91, rows=1200)
MetricRow(metric='accuracy', feature='*', value=0.91, threshold=None, flagged=False, rows=1200)
"""

from __future__ import annotations

from typing import NamedTuple


class MetricRow(NamedTuple):
    """A value for the ``monitoring_results`` table; ``rows`` is the count it was computed on
    (None: the rows of the drift report)."""

    metric: str
    feature: str
    value: float | None
    threshold: float | None = None
    flagged: bool = False
    rows: int | None = None
