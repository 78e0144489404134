"""The performance and service sections of a monitoring run over a prediction-log window.

``shipyard monitor run --window`` and the scheduler's ``monitor`` jobs both call
``performance_and_service`` (rows for the store) and ``performance_html`` (the report's
section, with the version's stored performance series).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shipyard.config import MonitoringTable, parse_label_delay
from shipyard.dataset import Profile
from shipyard.monitoring._accumulate import DriftAccumulator
from shipyard.monitoring._html import performance_section, render_html
from shipyard.monitoring._performance import PerformanceReport, compute_performance
from shipyard.monitoring._performance_data import labelled_window
from shipyard.monitoring._report import DriftReport
from shipyard.monitoring._results import MonitoringResults
from shipyard.monitoring._rows import MetricRow
from shipyard.monitoring._service import ServiceReport, compute_service, service_window
from shipyard.store import Store


def label_delay(option: str | None, monitoring: MonitoringTable) -> timedelta:
    """``option`` (e.g. ``--label-delay 1h``), else ``label_delay`` of the project's
    ``[monitoring]`` table (0 when unset)."""
    if option is not None:
        return parse_label_delay(option)
    return monitoring.label_delay


def performance_and_service(
    loaded: Any, root: Path, start: datetime, end: datetime, delay: timedelta
) -> tuple[PerformanceReport | None, ServiceReport, list[MetricRow]]:
    """Both sections of one loaded version's window ``[start, end)``, and their rows."""
    predictions, labels = labelled_window(root, loaded.name, loaded.version, start, end)
    performance = None
    if len(predictions):
        performance = compute_performance(
            predictions,
            labels,
            task=loaded.manifest.task,
            classes=loaded.classes,
            baseline=loaded.manifest.metrics,
            now=datetime.now(UTC),
            label_delay=delay,
        )
    service = compute_service(service_window(root, loaded.name, start, end))
    rows = [*(performance.rows() if performance else []), *service.rows(loaded.version)]
    return performance, service, rows


def performance_html(
    store: Store,
    loaded: Any,
    performance: PerformanceReport | None,
    service: ServiceReport | None,
) -> str:
    """The report's performance section, with this version's stored performance series."""
    import pandas as pd

    if performance is None and service is None:
        return ""
    names = [m.name for m in performance.metrics] if performance else []
    results = MonitoringResults(store)
    records = [
        {"window_end": r.window_end, "feature": r.feature, "metric": r.metric, "value": r.value}
        for name in names
        for metric in (name, f"{name}.ci_low", f"{name}.ci_high")
        for r in results.history(loaded.name, metric=metric, feature="*", version=loaded.version)
    ]
    history = pd.DataFrame(records, columns=["window_end", "feature", "metric", "value"])
    return performance_section(performance, service, history)


def window_report_html(
    store: Store,
    loaded: Any,
    report: DriftReport,
    reference: Profile,
    accumulator: DriftAccumulator,
    source: str,
    performance: PerformanceReport | None = None,
    service: ServiceReport | None = None,
) -> str:
    """The self-contained HTML report of one monitoring run of ``loaded`` over ``source``."""
    return render_html(
        report,
        reference,
        states=accumulator.states,
        title=f"{loaded.name} v{loaded.version}: {source}",
        window=source,
        extra_sections=[performance_html(store, loaded, performance, service)],
    )
