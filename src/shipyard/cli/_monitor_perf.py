"""Performance and service sections of ``shipyard monitor run`` over a log window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shipyard.cli._app import console, table
from shipyard.monitoring import (
    MetricRow,
    PerformanceReport,
    ServiceReport,
    compute_performance,
    compute_service,
    label_delay_setting,
    labelled_window,
    parse_label_delay,
    service_window,
)


def label_delay(option: str | None, config: Path) -> timedelta:
    """``--label-delay``, else ``label_delay`` of ``[monitoring]`` in shipyard.toml, else 0."""
    if option is not None:
        return parse_label_delay(option)
    return label_delay_setting(config) or timedelta(0)


def performance_and_service(
    loaded: Any, root: Path, start: datetime, end: datetime, delay: timedelta
) -> tuple[PerformanceReport | None, ServiceReport, list[MetricRow]]:
    """Both sections of one version's window and their rows for the store."""
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


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def print_sections(performance: PerformanceReport | None, service: ServiceReport) -> None:
    """The performance and service tables of the printed summary."""
    if performance is not None:
        cov = performance.coverage
        share = "-" if cov.coverage is None else f"{100 * cov.coverage:.1f}%"
        table(
            f"Performance ({performance.average}): {performance.n_used:,} labelled; coverage "
            f"{share} ({cov.labelled_eligible:,} of {cov.eligible:,} predictions older than the "
            f"{cov.label_delay_seconds / 3600:g} h label delay)",
            ["metric", "value", f"{100 * performance.confidence:g}% CI", "baseline", "diff", "n"],
            [
                (
                    m.name,
                    _fmt(m.value) if m.value is not None else f"- ({m.reason})",
                    f"{_fmt(m.ci_low)} .. {_fmt(m.ci_high)} ({m.ci_method})" if m.ci_method else "",
                    _fmt(m.baseline),
                    _fmt(m.difference),
                    m.n,
                )
                for m in performance.metrics
            ],
        )
        notes = [
            (
                performance.unknown_labels,
                "labels are not valid for the model (e.g. "
                f"{', '.join(performance.unknown_examples[:3])}) and were left out",
            ),
            (performance.missing_labels, "labels are missing or NaN"),
            (performance.relabelled, "predictions were labelled more than once (newest kept)"),
        ]
        for count, text in notes:
            if count:
                console.print(f"[yellow]{count:,} {text}.[/]")
        if performance.message:
            console.print(performance.message)
    table(
        f"Service: {service.requests:,} requests, {service.predictions:,} predictions, "
        f"{service.refused:,} refused",
        ["version", "arm", "requests", "predictions", "error rate", "p50 ms", "p95 ms", "p99 ms"],
        [
            (
                "-" if g.version is None else g.version,
                g.arm or "all",
                g.requests,
                g.predictions,
                _fmt(g.error_rate),
                _fmt(g.latency_p50_ms),
                _fmt(g.latency_p95_ms),
                _fmt(g.latency_p99_ms),
            )
            for g in service.groups
        ],
    )


def html_section(
    store: Any,
    loaded: Any,
    performance: PerformanceReport | None,
    service: ServiceReport | None,
) -> str:
    """The report's performance section, with this version's stored performance series."""
    import pandas as pd

    from shipyard.monitoring import MonitoringResults, performance_section

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
