"""The performance and service sections of a monitoring run over a prediction-log window, and
the run's HTML report.

``performance_and_service`` computes both sections of a version's window (rows for the store):
the realised performance on the labelled predictions, the label-free estimate on all of them
(``performance_estimate``: CBPE calibrated on the archive's eval outputs, so the model is not
unpickled), and service. ``window_report_html`` draws the report, whose performance section
shows the version's stored series (``performance_html``). ``label_delay`` is the one reading of
the label-delay setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from shipyard.config import MonitoringTable, parse_label_delay
from shipyard.dataset import Profile
from shipyard.errors import InvalidInput
from shipyard.monitoring import (
    CBPE,
    DriftAccumulator,
    DriftReport,
    MetricRow,
    MonitoringResults,
    PerformanceEstimate,
    PerformanceReport,
    ServiceReport,
    compute_performance,
    compute_service,
    labelled_window,
    service_window,
)
from shipyard.packaging import EVAL_TARGET, Archive
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


@dataclass
class WindowSections:
    """The sections of a log window besides drift: realised performance (None without
    predictions), the label-free estimate (None: ``estimate_note`` says why), service, and
    the rows to store."""

    performance: PerformanceReport | None
    service: ServiceReport
    estimate: PerformanceEstimate | None = None
    estimate_note: str | None = None
    rows: list[MetricRow] = field(default_factory=list)


def performance_and_service(
    archive: Archive, root: Path, start: datetime, end: datetime, delay: timedelta
) -> WindowSections:
    """The sections of one version's window ``[start, end)``, and their rows."""
    manifest = archive.manifest
    predictions, labels = labelled_window(root, manifest.name, manifest.version, start, end)
    performance = estimate = note = None
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
        estimate, note = performance_estimate(archive, predictions)
    service = compute_service(service_window(root, manifest.name, start, end))
    rows = [
        *(performance.rows() if performance else []),
        *(estimate.rows() if estimate else []),
        *service.rows(manifest.version),
    ]
    return WindowSections(performance, service, estimate, note, rows)


def performance_estimate(
    archive: Archive, predictions: pd.DataFrame
) -> tuple[PerformanceEstimate | None, str | None]:
    """CBPE over every prediction of the window (labelled or not; ``prediction`` and
    ``proba_<class>``), calibrated on the archive's eval outputs; or None and the one-line
    reason there is none (a regressor, no eval outputs, no probabilities, unusable data)."""
    manifest = archive.manifest
    why = "No label-free estimate"
    if manifest.task != "classification" or not manifest.classes:
        return None, f"{why}: the model is a regressor (CBPE estimates classifiers only)."
    reference = archive.eval_outputs()
    if reference is None:
        return None, (
            f"{why}: the archive has no eval outputs to calibrate on (registered without "
            "X_eval and y_eval)."
        )
    columns = [f"proba_{c}" for c in manifest.classes]
    if any(c not in reference.columns for c in columns):
        return None, f"{why}: the model gives no probabilities (predict_proba) to estimate from."
    logged = [c for c in columns if c in predictions.columns]
    if len(logged) < len(columns):
        return None, f"{why}: the logged predictions carry no probabilities."
    window = predictions.dropna(subset=columns)
    if window.empty:
        return None, f"{why}: no logged prediction of this window has probabilities."
    try:
        estimator = CBPE().fit(reference[columns], reference[EVAL_TARGET], manifest.classes)
        return estimator.estimate(window[columns], predictions=window["prediction"]), None
    except InvalidInput as exc:  # the run goes on: the estimate is an extra, not the check
        return None, f"{why}: {exc}"


def performance_html(
    store: Store,
    archive: Archive,
    performance: PerformanceReport | None,
    service: ServiceReport | None,
    estimate: PerformanceEstimate | None = None,
    estimate_note: str | None = None,
) -> str:
    """The report's performance section, with this version's stored performance series
    (realised and estimated)."""
    from shipyard.monitoring import performance_section  # plotly, on first use

    if performance is None and service is None:
        return ""
    name, version = archive.manifest.name, archive.manifest.version
    names = [m.name for m in performance.metrics] if performance else []
    names += [f"estimated_{m.name}" for m in estimate.metrics] if estimate else []
    results = MonitoringResults(store)
    records = [
        {"window_end": r.window_end, "feature": r.feature, "metric": r.metric, "value": r.value}
        for metric_name in names
        for metric in (metric_name, f"{metric_name}.ci_low", f"{metric_name}.ci_high")
        for r in results.history(name, metric=metric, feature="*", version=version)
    ]
    history = pd.DataFrame(records, columns=["window_end", "feature", "metric", "value"])
    return performance_section(
        performance, service, history, estimate=estimate, estimate_note=estimate_note
    )


def window_report_html(
    store: Store,
    archive: Archive,
    report: DriftReport,
    reference: Profile,
    accumulator: DriftAccumulator,
    source: str,
    performance: PerformanceReport | None = None,
    service: ServiceReport | None = None,
    estimate: PerformanceEstimate | None = None,
    estimate_note: str | None = None,
) -> str:
    """The self-contained HTML report of one monitoring run of ``archive``'s version."""
    from shipyard.monitoring import render_html  # plotly, on first use

    return render_html(
        report,
        reference,
        states=accumulator.states,
        title=f"{archive.manifest.name} v{archive.manifest.version}: {source}",
        window=source,
        extra_sections=[
            performance_html(store, archive, performance, service, estimate, estimate_note)
        ],
    )
