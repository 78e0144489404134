"""The printed performance and service tables of ``shipyard monitor run`` over a log window."""

from __future__ import annotations

from shipyard.cli._app import console, table
from shipyard.monitoring import PerformanceEstimate, PerformanceReport, ServiceReport


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def print_estimate(
    estimate: PerformanceEstimate | None,
    note: str | None,
    performance: PerformanceReport | None,
) -> None:
    """The label-free estimate beside the realised metrics, and its assumptions (or the one
    line saying why there is no estimate)."""
    if estimate is None:
        if note:
            console.print(note)
        return
    realised = {m.name: m for m in performance.metrics} if performance else {}
    labelled = performance.n_used if performance else 0
    table(
        f"Estimated without labels (CBPE) on {estimate.n:,}; realised on {labelled:,} labelled",
        ["metric", "estimated", f"{100 * estimate.confidence:g}% interval", "realised", "its CI"],
        [
            (
                m.name,
                _fmt(m.value) if m.value is not None else f"- ({m.reason})",
                f"{_fmt(m.ci_low)} .. {_fmt(m.ci_high)}" if m.ci_low is not None else "",
                _fmt(r.value) if (r := realised.get(m.name)) else "-",
                f"{_fmt(r.ci_low)} .. {_fmt(r.ci_high)}" if r and r.ci_low is not None else "",
            )
            for m in estimate.metrics
        ],
    )
    console.print(estimate.summary(), markup=False, highlight=False)


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
