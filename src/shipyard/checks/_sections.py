"""The performance and service sections of a monitoring run over a prediction-log window, and
the run's HTML report.

``performance_and_service`` computes both sections of a version's window (rows for the store),
``window_report_html`` draws the report, whose performance section shows the version's stored
series (``performance_html``). ``label_delay`` is the one reading of the label-delay setting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from shipyard.config import MonitoringTable, parse_label_delay
from shipyard.dataset import Profile
from shipyard.monitoring import (
    DriftAccumulator,
    DriftReport,
    MetricRow,
    MonitoringResults,
    PerformanceReport,
    ServiceReport,
    compute_performance,
    compute_service,
    labelled_window,
    service_window,
)
from shipyard.packaging import Archive
from shipyard.store import Store


def label_delay(option: str | None, monitoring: MonitoringTable) -> timedelta:
    """``option`` (``--label-delay``: ``0``, ``30m``, ``12h``, ``1d``, ``2w``), else
    ``label_delay`` of the project's ``[monitoring]`` table (0 when unset).

    >>> label_delay("2h", MonitoringTable())
    datetime.timedelta(seconds=7200)
    """
    if option is not None:
        return parse_label_delay(option)
    return monitoring.label_delay


def performance_and_service(
    archive: Archive, root: Path, start: datetime, end: datetime, delay: timedelta
) -> tuple[PerformanceReport | None, ServiceReport, list[MetricRow]]:
    """Both sections of one version's window ``[start, end)``, and their rows."""
    manifest = archive.manifest
    predictions, labels = labelled_window(root, manifest.name, manifest.version, start, end)
    performance = None
    if len(predictions):
        performance = compute_performance(
            predictions,
            labels,
            task=manifest.task,
            classes=manifest.classes,
            baseline=manifest.metrics,
            now=datetime.now(UTC),
            label_delay=delay,
        )
    service = compute_service(service_window(root, manifest.name, start, end))
    rows = [*(performance.rows() if performance else []), *service.rows(manifest.version)]
    return performance, service, rows


def performance_html(
    store: Store,
    archive: Archive,
    performance: PerformanceReport | None,
    service: ServiceReport | None,
) -> str:
    """The report's performance section, with this version's stored performance series."""
    import pandas as pd

    from shipyard.monitoring import performance_section  # plotly, on first use

    if performance is None and service is None:
        return ""
    name, version = archive.manifest.name, archive.manifest.version
    names = [m.name for m in performance.metrics] if performance else []
    results = MonitoringResults(store)
    records = [
        {"window_end": r.window_end, "feature": r.feature, "metric": r.metric, "value": r.value}
        for metric_name in names
        for metric in (metric_name, f"{metric_name}.ci_low", f"{metric_name}.ci_high")
        for r in results.history(name, metric=metric, feature="*", version=version)
    ]
    history = pd.DataFrame(records, columns=["window_end", "feature", "metric", "value"])
    return performance_section(performance, service, history)


def window_report_html(
    store: Store,
    archive: Archive,
    report: DriftReport,
    reference: Profile,
    accumulator: DriftAccumulator,
    source: str,
    performance: PerformanceReport | None = None,
    service: ServiceReport | None = None,
) -> str:
    """The self-contained HTML report of one monitoring run of ``archive``'s version."""
    from shipyard.monitoring import render_html  # plotly, on first use

    return render_html(
        report,
        reference,
        states=accumulator.states,
        title=f"{archive.manifest.name} v{archive.manifest.version}: {source}",
        window=source,
        extra_sections=[performance_html(store, archive, performance, service)],
    )
