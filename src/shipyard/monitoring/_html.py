"""A self-contained HTML page of one drift report, with Plotly charts that work offline.

The page embeds plotly.js once, in its ``<head>``: the "basic" build (scatter and bar, the
only traces the report draws; MIT, ``static/plotly-basic.min.js``, the same plotly.js version
as the ``plotly`` package), not the full bundle, whose map and geo code point at CDNs (map
tiles, icons, topojson) and which weighs four times as much. The two network defaults the
basic build still carries (topojson, Chart Studio) are emptied as it is embedded. The figures
are inline scripts, so the file opens on a machine without network access and names no host
to load from. Every text
that comes from data (feature names, categories, the title) is escaped, in the HTML and in
the figures.

Current distributions: a ``DriftReport`` holds scores, not counts, so the charts need the
current window's counts from elsewhere. Pass ``states`` (``accumulator.states`` of the
``DriftAccumulator`` that made the report: exact counts on the reference bins) or
``current_profile`` (``profile_frame`` of the current window: the numeric shares per reference
bin are read from its 101 percentiles, to about 1%). Without either, the charts show the
reference only.

>>> import numpy as np, pandas as pd
>>> from shipyard.dataset import profile_frame
>>> from shipyard.monitoring import compute_drift
>>> frame = pd.DataFrame({"x": np.arange(1000.0)})
>>> reference = profile_frame(frame)
>>> page = render_html(compute_drift(reference, frame), reference, title="churn v3")
>>> page.startswith("<!DOCTYPE html>"), page.count("<script src=")
(True, 0)
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from shipyard.dataset import OTHER, CategoricalProfile, NumericProfile, Profile
from shipyard.errors import InvalidInput
from shipyard.monitoring._cbpe import PREFIX, PerformanceEstimate
from shipyard.monitoring._drift import _bin_counts, categorical_buckets
from shipyard.monitoring._performance import PerformanceReport
from shipyard.monitoring._report import DriftReport, FeatureReport
from shipyard.monitoring._service import ServiceReport
from shipyard.monitoring._state import CategoricalState, ColumnState, NumericState, reference_cdf

#: Columns ``history`` must have: one row per window end, feature, metric and value.
HISTORY_COLUMNS = ("window_end", "feature", "metric", "value")
#: Categories drawn per feature; the rest of the reference categories share one bar.
MAX_CATEGORIES = 30

_RED, _AMBER, _GREEN, _GREY = "#c62828", "#e08a00", "#2e7d32", "#757575"
_REFERENCE_COLOUR, _CURRENT_COLOUR = "#90a4ae", "#1565c0"
_NONE = "-"
_CONFIG = {"displaylogo": False, "responsive": True}


@dataclass(frozen=True)
class _Buckets:
    labels: list[str]
    reference: list[float]
    current: list[float] | None
    note: str


def render_html(
    report: DriftReport,
    reference: Profile,
    *,
    title: str,
    current_profile: Profile | None = None,
    history: pd.DataFrame | None = None,
    states: Mapping[str, ColumnState] | None = None,
    window: str | None = None,
    generated_at: dt.datetime | None = None,
    extra_sections: Sequence[str] = (),
) -> str:
    """The report as one HTML page (a string; write it with ``encoding="utf-8"``).

    ``reference`` is the profile the report was computed against. ``states`` (exact) or
    ``current_profile`` (approximate for numeric bins) give the current distributions; see the
    module docstring. ``history`` (columns ``window_end, feature, metric, value``) adds one
    line chart per metric over time. ``window`` is shown as given (e.g. "2024-05-01 to
    2024-05-02"); ``generated_at`` defaults to now, in UTC.
    """
    if history is not None:
        missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
        if missing:
            raise InvalidInput(
                f"The 'history' frame of render_html needs the columns {list(HISTORY_COLUMNS)}. "
                f"It lacks {missing}.",
            )
    generated = generated_at or dt.datetime.now(dt.UTC)
    figures: list[str] = []
    sections = []
    for index, feature in enumerate(report.features):
        column = reference.columns.get(feature.name)
        buckets = _buckets(feature.name, column, current_profile, states)
        chart = ""
        if buckets is not None:
            chart = figure_html(_distribution_figure(feature.name, buckets), len(figures))
            figures.append(chart)
        sections.append(_feature_section(index, feature, chart, buckets))
    history_html = _history_section(history, report, start=len(figures))
    body = "\n".join(
        [
            _header(report, title, window, generated),
            _summary_table(report),
            history_html,
            *extra_sections,  # e.g. performance_section(...)
            '<h2 id="features">Features</h2>',
            *sections,
        ]
    )
    return _PAGE.format(
        title=_e(title),
        style=_STYLE,
        plotlyjs=plotly_js(),
        body=body,
    )


# ---------------------------------------------------------------------------------------------
# Text


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _badge(colour: str, text: str) -> str:
    return f'<span class="badge" style="background:{colour}">{_e(text)}</span>'


def _number(value: float | None) -> str:
    if value is None:
        return _NONE
    return f"{value:.3g}"


def _share(value: float | None) -> str:
    return _NONE if value is None else f"{100 * value:.2f}%"


def _header(report: DriftReport, title: str, window: str | None, generated: dt.datetime) -> str:
    n_breached = sum(f.quality_breached for f in report.features)
    if report.drifted:
        dataset = _badge(_RED, "dataset drift")
    elif report.n_drifted:
        dataset = _badge(_AMBER, "no dataset drift")
    else:
        dataset = _badge(_GREEN, "no drift")
    drifted_colour = _RED if report.drifted else _AMBER if report.n_drifted else _GREEN
    badges = " ".join(
        [
            dataset,
            _badge(
                drifted_colour,
                f"{report.n_drifted} of {report.n_judged} judged features drifted",
            ),
            _badge(
                _AMBER if n_breached else _GREEN,
                f"{n_breached} data-quality breach{'es' if n_breached != 1 else ''}",
            ),
        ]
    )
    facts = [
        ("Window", window or _NONE),
        ("Rows", f"{report.n_rows:,} current, {report.n_reference_rows:,} reference"),
        (
            "Dataset flag",
            f"drifted when at least {100 * report.config.drift_share:g}% of judged features "
            f"drift; here {100 * report.drift_share:.1f}%",
        ),
        ("Computed in", f"{report.elapsed_seconds:.2f} s"),
        ("Generated", generated.strftime("%Y-%m-%d %H:%M:%S %Z").strip()),
    ]
    if report.unexpected_columns:
        facts.append(("Columns not in the reference", ", ".join(report.unexpected_columns)))
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    return (
        f'<header><h1>{_e(title)}</h1><p>{badges}</p><table class="facts">{rows}</table></header>'
    )


def _decisive(feature: FeatureReport) -> tuple[str, str, str]:
    """The chosen test's score, its threshold (with direction) and its name."""
    if feature.test is None:
        return _NONE, _NONE, "not judged"
    for score in feature.scores:
        if score.name == feature.test:
            direction = "<" if score.kind == "p_value" else ">"
            return _number(score.value), f"{direction} {score.threshold:g}", feature.test
    return _NONE, _NONE, feature.test


def _stability(feature: FeatureReport) -> str:
    for score in feature.scores:
        if score.name in ("psi", "csi") and score.value is not None:
            return f"{score.value:.3f} ({score.band})"
    return _NONE


def _missing(feature: FeatureReport) -> str:
    for metric in feature.quality:
        if metric.name == "missing":
            return f"{_share(metric.share)} vs {_share(metric.baseline)}"
    return _NONE


def _drift_cell(feature: FeatureReport) -> str:
    if feature.test is None:
        return _badge(_GREY, "not judged")
    return _badge(_RED, "drift") if feature.drifted else _badge(_GREEN, "ok")


def _quality_cell(feature: FeatureReport) -> str:
    breached = [m for m in feature.quality if m.breached]
    if not breached:
        return _badge(_GREEN, "ok")
    return " ".join(_badge(_AMBER, f"{m.name} {_share(m.share)}") for m in breached)


def _summary_table(report: DriftReport) -> str:
    order = sorted(
        range(len(report.features)),
        key=lambda i: (not report.features[i].drifted, not report.features[i].quality_breached),
    )
    rows = []
    for i in order:
        feature = report.features[i]
        value, threshold, test = _decisive(feature)
        flagged = " flagged" if feature.drifted or feature.quality_breached else ""
        rows.append(
            f'<tr class="feature-row{flagged}" data-feature="{_e(feature.name)}">'
            f'<td><a href="#feature-{i}">{_e(feature.name)}</a></td>'
            f"<td>{_e(feature.kind)}</td>"
            f'<td title="{_e(feature.reason)}">{_e(test)}</td>'
            f'<td class="num">{_e(value)}</td><td class="num">{_e(threshold)}</td>'
            f"<td>{_drift_cell(feature)}</td>"
            f'<td class="num">{_e(_stability(feature))}</td>'
            f'<td class="num">{_e(_missing(feature))}</td>'
            f"<td>{_quality_cell(feature)}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Feature",
            "Type",
            "Test",
            "Score",
            "Threshold",
            "Drift",
            "PSI / CSI",
            "Missing (current vs baseline)",
            "Quality",
        )
    )
    return (
        '<h2 id="summary">Summary</h2><p class="note">Drifted and breached features first. '
        "A p-value drifts below its threshold, a distance above it; hover a test for why "
        "the rule chose it.</p>"
        f'<table class="summary"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _feature_section(
    index: int, feature: FeatureReport, chart: str, buckets: _Buckets | None
) -> str:
    score_rows = "".join(
        f"<tr{' class=decisive' if s.name == feature.test else ''}>"
        f"<td>{_e(s.name)}</td><td>{_e(s.kind)}</td><td class=num>{_number(s.value)}</td>"
        f"<td class=num>{s.threshold:g}</td><td>{_e(s.band or '')}</td>"
        f"<td>{_badge(_RED, 'drift') if s.drifted else ''}</td><td>{_e(s.detail or '')}</td>"
        "</tr>"
        for s in feature.scores
    )
    quality_rows = "".join(
        f"<tr><td>{_e(m.name)}</td><td class=num>{m.count:,} / {m.denominator:,}</td>"
        f"<td class=num>{_share(m.share)}</td><td class=num>{_share(m.baseline)}</td>"
        f"<td class=num>{_share(m.limit)}</td>"
        f"<td>{_badge(_AMBER, 'breached') if m.breached else ''}</td></tr>"
        for m in feature.quality
    )
    note = f'<p class="note">{_e(buckets.note)}</p>' if buckets and buckets.note else ""
    if buckets is None:
        note = '<p class="note">No reference distribution for this feature.</p>'
    return (
        f'<section class="feature" id="feature-{index}">'
        f"<h3>{_e(feature.name)} {_drift_cell(feature)} "
        f"{_badge(_AMBER, 'quality breach') if feature.quality_breached else ''}</h3>"
        f'<p class="note">{_e(feature.kind)}; test: {_e(feature.test or "none")} '
        f"({_e(feature.reason)}); values judged: {feature.n_values[0]:,} reference, "
        f"{feature.n_values[1]:,} current</p>"
        f'<div class="row"><div class="chart">{chart}{note}</div><div class="tables">'
        "<table><thead><tr><th>Test</th><th>Kind</th><th>Value</th><th>Threshold</th>"
        f"<th>Band</th><th>Drift</th><th>Detail</th></tr></thead><tbody>{score_rows}</tbody>"
        "</table><table><thead><tr><th>Quality</th><th>Count</th><th>Share</th>"
        "<th>Baseline</th><th>Limit</th><th></th></tr></thead>"
        f"<tbody>{quality_rows}</tbody></table></div></div></section>"
    )


# ---------------------------------------------------------------------------------------------
# Distributions


def _buckets(
    name: str,
    column: NumericProfile | CategoricalProfile | None,
    current_profile: Profile | None,
    states: Mapping[str, ColumnState] | None,
) -> _Buckets | None:
    if column is None:
        return None
    state = None if states is None else states.get(name)
    current = None if current_profile is None else current_profile.columns.get(name)
    if isinstance(column, NumericProfile):
        return _numeric_buckets(
            column,
            state if isinstance(state, NumericState) else None,
            current if isinstance(current, NumericProfile) else None,
        )
    return _categorical_buckets(
        column,
        state if isinstance(state, CategoricalState) else None,
        current if isinstance(current, CategoricalProfile) else None,
    )


def _shares(counts: Sequence[float], total: float) -> list[float]:
    return [float(c) / total if total else 0.0 for c in counts]


def _numeric_buckets(
    reference: NumericProfile, state: NumericState | None, current: NumericProfile | None
) -> _Buckets:
    edges = np.asarray(reference.bin_edges, dtype=np.float64)
    if len(edges) == 1:
        inner_labels = [f"{edges[0]:.4g}"]
    else:
        inner_labels = [
            f"{'[' if i == 0 else '('}{a:.4g}, {b:.4g}]"
            for i, (a, b) in enumerate(itertools.pairwise(edges))
        ]
    labels = ["below range", *inner_labels, "above range", "missing"]
    ref_counts = [reference.neginf, *reference.bin_counts, reference.posinf, reference.missing]
    cur_counts: list[float] | None = None
    total = 0
    note = "Shares of all rows over the reference's quantile bins (the PSI bins)."
    if state is not None:
        total = state.rows
        if len(edges) and state.n_finite:
            left, right = state.cdf_at(edges)
            inner = _bin_counts(left, right, state.n_finite).tolist()
        else:
            inner = [0.0] * len(inner_labels)
        cur_counts = [
            state.below + state.neginf,
            *inner,
            state.above + state.posinf,
            state.missing + state.violations,
        ]
    elif current is not None:
        total = current.count
        n_finite = current.count - current.missing - current.posinf - current.neginf
        below, above = 0.0, 0.0
        inner = [0.0] * len(inner_labels)
        if n_finite and current.quantiles:
            if len(edges):
                left = reference_cdf(current.quantiles, edges, left=True)
                right = reference_cdf(current.quantiles, edges)
                inner = _bin_counts(left, right, n_finite).tolist()
                below = float(left[0]) * n_finite
                above = (1.0 - float(right[-1])) * n_finite
            else:
                above = float(n_finite)
        cur_counts = [below + current.neginf, *inner, above + current.posinf, current.missing]
        note += " Current shares per bin are read from the current profile's percentiles."
    else:
        note += " The current distribution was not given."
    return _Buckets(
        labels=labels,
        reference=_shares(ref_counts, reference.count),
        current=None if cur_counts is None else _shares(cur_counts, total),
        note=note,
    )


def _categorical_buckets(
    reference: CategoricalProfile,
    state: CategoricalState | None,
    current: CategoricalProfile | None,
) -> _Buckets:
    note = "Shares of all rows; unseen holds categories the reference did not keep."
    cur_counts: list[float] | None
    if state is not None:
        labels, ref_array, cur_array = categorical_buckets(reference, state, missing=True)
        ref_counts, cur_counts = ref_array.tolist(), cur_array.tolist()
        total = state.rows
        if state.unseen:
            top = sorted(state.unseen.items(), key=lambda kv: -kv[1])[:5]
            note += " Most frequent unseen: " + ", ".join(f"{k} ({v:,})" for k, v in top) + "."
    else:
        labels = [key for key in reference.frequencies if key != OTHER]
        ref_counts = [float(reference.frequencies[key]) for key in labels]
        ref_counts += [float(reference.frequencies.get(OTHER, 0)), float(reference.missing)]
        cur_counts, total = None, 0
        if current is not None:
            known = set(labels)
            cur_counts = [float(current.frequencies.get(key, 0)) for key in labels]
            unseen = sum(n for key, n in current.frequencies.items() if key not in known)
            cur_counts += [float(unseen), float(current.missing)]
            total = current.count
        else:
            note += " The current distribution was not given."
        labels = [*labels, "__unseen__", "__missing__"]
    # Keep the most frequent reference categories, then unseen and missing, apart.
    n_known = len(labels) - 2
    if n_known > MAX_CATEGORIES:
        rest = slice(MAX_CATEGORIES, n_known)
        merged = f"({n_known - MAX_CATEGORIES} more categories)"
        labels = [*labels[:MAX_CATEGORIES], merged, *labels[-2:]]
        ref_counts = [*ref_counts[:MAX_CATEGORIES], sum(ref_counts[rest]), *ref_counts[-2:]]
        if cur_counts is not None:
            cur_counts = [*cur_counts[:MAX_CATEGORIES], sum(cur_counts[rest]), *cur_counts[-2:]]
    return _Buckets(
        labels=labels,
        reference=_shares(ref_counts, reference.count),
        current=None if cur_counts is None else _shares(cur_counts, total),
        note=note,
    )


# ---------------------------------------------------------------------------------------------
# Figures


def _layout(title: str, *, height: int) -> dict[str, object]:
    return {
        "title": {"text": _e(title), "x": 0.01, "font": {"size": 14}},
        "height": height,
        "margin": {"l": 50, "r": 10, "t": 40, "b": 70},
        "template": go.layout.Template(),  # no bulky default template in every figure
        "plot_bgcolor": "white",
        "legend": {"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
        "font": {"family": "system-ui, sans-serif", "size": 11},
    }


def _distribution_figure(name: str, buckets: _Buckets) -> go.Figure:
    labels = [_e(label) for label in buckets.labels]
    fig = go.Figure(layout=_layout(f"{name}: reference vs current", height=320))
    fig.add_bar(x=labels, y=buckets.reference, name="reference", marker_color=_REFERENCE_COLOUR)
    if buckets.current is not None:
        fig.add_bar(x=labels, y=buckets.current, name="current", marker_color=_CURRENT_COLOUR)
    fig.update_layout(barmode="group", bargap=0.15)
    fig.update_xaxes(type="category", tickangle=-30, automargin=True)
    fig.update_yaxes(tickformat=".0%", gridcolor="#eee", title_text="share of rows")
    return fig


def _history_section(history: pd.DataFrame | None, report: DriftReport, *, start: int) -> str:
    if history is None:
        return ""
    if history.empty:
        return '<h2 id="history">Over time</h2><p class="note">No earlier results.</p>'
    frame = history.assign(window_end=pd.to_datetime(history["window_end"], utc=True))
    frame = frame.sort_values(["metric", "feature", "window_end"], kind="stable")
    charts = []
    for i, (metric, by_metric) in enumerate(frame.groupby("metric", sort=True)):
        fig = go.Figure(layout=_layout(f"{metric} over time", height=300))
        for feature, rows in by_metric.groupby("feature", sort=True):
            fig.add_scatter(
                x=[t.isoformat() for t in rows["window_end"]],
                y=rows["value"].astype(float).tolist(),
                name=_e(feature),
                mode="lines+markers",
            )
        threshold = report.config.thresholds.get(str(metric))
        if threshold is not None:
            fig.add_hline(
                y=threshold.value,
                line_dash="dash",
                line_color=_RED,
                annotation_text=f"threshold {threshold.value:g}",
            )
        fig.update_yaxes(gridcolor="#eee")
        fig.update_xaxes(gridcolor="#eee")
        charts.append(f'<div class="history-chart">{figure_html(fig, start + i)}</div>')
    return (
        '<h2 id="history">Over time</h2><p class="note">Scores and quality metrics of earlier '
        f'windows, one line per feature.</p><div class="grid">{"".join(charts)}</div>'
    )


def performance_section(
    performance: PerformanceReport | None,
    service: ServiceReport | None,
    history: pd.DataFrame | None = None,
    *,
    estimate: PerformanceEstimate | None = None,
    estimate_note: str | None = None,
) -> str:
    """Performance over time with its confidence band (``history``: columns ``window_end,
    metric, value`` holding the metrics and their ``<metric>.ci_low``/``.ci_high``), the
    current metrics and label coverage, and service volume and latency per version.

    ``estimate``: the label-free estimate, shown beside the realised metrics with its
    assumptions, and over time from its ``estimated_<metric>`` rows in ``history``
    (``estimate_note``: why there is none)."""
    from shipyard.monitoring._html_estimate import estimate_html  # it imports this module

    parts = ['<h2 id="performance">Performance and service</h2>']
    number = 0
    if performance is not None:
        cov = performance.coverage
        share = _share(cov.coverage)
        parts.append(
            f'<p class="note">{performance.n_used:,} labelled predictions '
            f"({_e(performance.average)}); label coverage {share} "
            f"({cov.labelled_eligible:,} of {cov.eligible:,} predictions "
            f"older than the {cov.label_delay_seconds / 3600:g} h label delay). Intervals: "
            f"{100 * performance.confidence:g}%, Wilson or bootstrap ({performance.resamples} "
            "resamples).</p>"
        )
        rows = "".join(
            f"<tr><td>{_e(m.name)}</td><td class='num'>{_number(m.value)}</td>"
            f"<td class='num'>{_number(m.ci_low)} .. {_number(m.ci_high)}</td>"
            f"<td class='num'>{_number(m.baseline)}</td><td>{_e(m.reason or '')}</td></tr>"
            for m in performance.metrics
        )
        parts.append(
            "<table><thead><tr><th>metric</th><th>value</th><th>interval</th><th>archive</th>"
            f"<th>note</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    if history is not None and not history.empty:
        frame = history.assign(window_end=pd.to_datetime(history["window_end"], utc=True))
        names = [
            m for m in sorted(set(frame["metric"])) if "." not in m and not m.startswith(PREFIX)
        ]
        fig = go.Figure(layout=_layout("performance over time", height=320))
        for name in names:
            line = frame[frame["metric"] == name].sort_values("window_end")
            x = [t.isoformat() for t in line["window_end"]]
            low = frame[frame["metric"] == f"{name}.ci_low"].sort_values("window_end")
            high = frame[frame["metric"] == f"{name}.ci_high"].sort_values("window_end")
            if len(low) == len(line) == len(high) and len(line):
                fig.add_scatter(
                    x=x + x[::-1],
                    y=high["value"].astype(float).tolist()
                    + low["value"].astype(float).tolist()[::-1],
                    fill="toself",
                    opacity=0.2,
                    line={"width": 0},
                    name=_e(f"{name} interval"),
                    showlegend=False,
                )
            fig.add_scatter(
                x=x, y=line["value"].astype(float).tolist(), name=_e(name), mode="lines+markers"
            )
        fig.update_yaxes(gridcolor="#eee")
        parts.append(figure_html(fig, 10_000 + number))
        number += 1
    parts.append(estimate_html(estimate, estimate_note, performance, history))
    if service is not None and service.groups:
        labels = [
            _e(f"v{g.version if g.version is not None else '-'} {g.arm or 'all'}")
            for g in service.groups
        ]
        fig = go.Figure(layout=_layout("service: latency (ms) and requests", height=320))
        for pct in ("p50", "p95", "p99"):
            values = [getattr(g, f"latency_{pct}_ms") for g in service.groups]
            fig.add_bar(x=labels, y=values, name=f"latency {pct}")
        fig.add_scatter(
            x=labels,
            y=[g.requests for g in service.groups],
            name="requests",
            yaxis="y2",
            mode="markers",
        )
        fig.update_layout(yaxis2={"overlaying": "y", "side": "right", "title": "requests"})
        parts.append(figure_html(fig, 10_000 + number))
    return "\n".join(parts)


#: Network addresses plotly.js keeps as config defaults even in the basic build, and what the
#: embedded copy uses instead: topojson for geo traces from cdn.plot.ly (the basic build
#: draws none) and Chart Studio's upload URL (its buttons are off). Emptied, the page names
#: no host it could load anything from.
_NETWORK_DEFAULTS = {
    'topojsonURL:{valType:"string",noBlank:!0,dflt:"https://cdn.plot.ly/un/"}': (
        'topojsonURL:{valType:"string",noBlank:!0,dflt:""}'
    ),
    'plotlyServerURL:{valType:"string",dflt:"https://cloud.plotly.com/newchart"}': (
        'plotlyServerURL:{valType:"string",dflt:""}'
    ),
}


@functools.cache
def plotly_js() -> str:
    """The bundled plotly.js (basic build) without network defaults: read once per process.

    Raises ``RuntimeError`` when a default is not where it was: a new plotly.js in
    ``static/`` must be checked again for addresses it could load from.
    """
    script = (resources.files("shipyard.monitoring") / "static" / "plotly-basic.min.js").read_text(
        encoding="utf-8"
    )
    for default, offline in _NETWORK_DEFAULTS.items():
        if script.count(default) != 1:
            raise RuntimeError(f"plotly-basic.min.js changed: {default!r} not found once")
        script = script.replace(default, offline)
    return script


def figure_html(fig: go.Figure, number: int) -> str:
    """One figure as a ``<div>`` for a page that includes ``plotly_js()`` once; ``number``
    makes its element id unique on the page."""
    # plotly escapes "<" in the figure JSON, so data cannot close the script element.
    return pio.to_html(
        fig,
        full_html=False,
        include_plotlyjs=False,
        div_id=f"chart-{number}",
        config=_CONFIG,
        default_width="100%",
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem 2rem; color: #212121; }
h1 { margin: 0 0 .5rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
h3 { margin: 0 0 .3rem; }
.badge { display: inline-block; color: white; border-radius: 1rem; padding: .1rem .6rem;
  font-size: .8rem; font-weight: 600; margin: .1rem 0; }
table { border-collapse: collapse; font-size: .85rem; margin: .4rem 0; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #eee; text-align: left; }
thead th { background: #f5f5f5; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.facts th { color: #616161; font-weight: 500; background: none; }
tr.flagged td:first-child { border-left: 4px solid #c62828; }
tr.decisive { font-weight: 600; }
.note { color: #616161; font-size: .85rem; margin: .2rem 0; }
section.feature { border: 1px solid #e0e0e0; border-radius: 6px; padding: .8rem 1rem;
  margin: 1rem 0; }
.row { display: flex; flex-wrap: wrap; gap: 1rem; }
.chart { flex: 1 1 520px; min-width: 360px; } .tables { flex: 1 1 420px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 1rem; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
<script>{plotlyjs}</script>
</head>
<body>
{body}
</body>
</html>
"""
