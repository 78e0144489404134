"""Plotly figures (plain dicts, drawn by ``static/ui.js``) of the model and monitoring pages.

Each is data only: times as ISO strings, and the drill-down link of a flagged point in its
``customdata`` (the page script follows it on click). Every figure has a text alternative on
its page (a table or a sentence), so nothing is only in the picture.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from shipyard.views import FlaggedPoint, JobRunItem, ProductionStep, Series

Figure = dict[str, Any]
BLUE, RED, GREY, GREEN, ORANGE = "#0550ae", "#cf222e", "#6e7781", "#1a7f37", "#9a6700"
_PALETTE = ("#0550ae", "#9a6700", "#1a7f37", "#8250df", "#bc4c00", "#0a7f85", "#6e7781")
_BAND = "rgba(5, 80, 174, 0.15)"


def window_url(model: str, run: str) -> str:
    """The drill-down page of one monitoring run."""
    return f"/ui/models/{quote(model, safe='')}/monitoring/windows/{quote(run, safe='')}"


def _iso(values: Iterable[datetime]) -> list[str]:
    return [v.isoformat() for v in values]


def _layout(title: str, y_title: str, **more: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 14}},
        "margin": {"l": 60, "r": 60, "t": 40, "b": 40},
        "height": 320,
        "hovermode": "closest",
        "xaxis": {"type": "date"},
        "yaxis": {"title": {"text": y_title}},
        "legend": {"orientation": "h", "y": -0.2},
        **more,
    }


def series_traces(
    series: Series, model: str, *, name: str | None = None, color: str = BLUE
) -> list[Figure]:
    """A line (with its interval as a band when stored) and its flagged points in red."""
    x = _iso(series.t)
    label = name or series.metric
    traces: list[Figure] = []
    if (
        series.lower is not None
        and series.upper is not None
        and any(v is not None for v in series.lower)
    ):
        traces.append(
            {
                "type": "scatter",
                "x": x,
                "y": series.upper,
                "mode": "lines",
                "line": {"width": 0},
                "showlegend": False,
                "hoverinfo": "skip",
                "name": f"{label} upper",
            }
        )
        traces.append(
            {
                "type": "scatter",
                "x": x,
                "y": series.lower,
                "mode": "lines",
                "line": {"width": 0},
                "fill": "tonexty",
                "fillcolor": _BAND,
                "name": f"{label} 95% interval",
                "hoverinfo": "skip",
            }
        )
    traces.append(
        {
            "type": "scatter",
            "x": x,
            "y": series.value,
            "mode": "lines+markers",
            "marker": {"size": 4, "color": color},
            "line": {"color": color, "width": 1.5},
            "name": label,
            "customdata": [window_url(model, r) for r in series.run],
        }
    )
    flagged = [i for i, f in enumerate(series.flagged) if f]
    if flagged:
        traces.append(
            {
                "type": "scatter",
                "x": [x[i] for i in flagged],
                "y": [series.value[i] for i in flagged],
                "mode": "markers",
                "marker": {"size": 9, "color": RED, "symbol": "x"},
                "name": f"{label} flagged",
                "customdata": [window_url(model, series.run[i]) for i in flagged],
            }
        )
    return traces


def production_overlay(
    steps: Sequence[ProductionStep], since: datetime, until: datetime
) -> tuple[list[Figure], list[Figure]]:
    """The production version as a step line on a right axis, and a vertical mark at each
    change inside ``[since, until]``."""
    before = [s for s in steps if s.start < since]
    inside = [s for s in steps if since <= s.start <= until]
    points = ([(since, before[-1].version)] if before else []) + [
        (s.start, s.version) for s in inside
    ]
    if not points:
        return [], []
    points.append((until, points[-1][1]))
    trace = {
        "type": "scatter",
        "x": _iso(p[0] for p in points),
        "y": [p[1] for p in points],
        "mode": "lines",
        "line": {"shape": "hv", "color": GREY, "dash": "dot"},
        "yaxis": "y2",
        "name": "production version",
    }
    shapes = [
        {
            "type": "line",
            "xref": "x",
            "yref": "paper",
            "x0": s.start.isoformat(),
            "x1": s.start.isoformat(),
            "y0": 0,
            "y1": 1,
            "line": {"color": ORANGE, "width": 1},
        }
        for s in inside
    ]
    return [trace], shapes


def metric_figure(
    series: Series | None,
    model: str,
    *,
    title: str,
    steps: Sequence[ProductionStep] = (),
    since: datetime,
    until: datetime,
    threshold: float | None = None,
) -> Figure:
    """One metric over time with its interval and flagged points, the production version
    overlaid (right axis) and the changes of production marked."""
    traces = series_traces(series, model) if series is not None else []
    overlay, shapes = production_overlay(steps, since, until)
    if threshold is not None:
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "yref": "y",
                "x0": 0,
                "x1": 1,
                "y0": threshold,
                "y1": threshold,
                "line": {"color": RED, "width": 1, "dash": "dash"},
            }
        )
    layout = _layout(title, series.metric if series else "", shapes=shapes)
    layout["xaxis"]["range"] = [since.isoformat(), until.isoformat()]
    if overlay:
        layout["yaxis2"] = {
            "title": {"text": "production version"},
            "overlaying": "y",
            "side": "right",
            "dtick": 1,
            "rangemode": "tozero",
            "showgrid": False,
        }
    return {"data": traces + overlay, "layout": layout}


def lines_figure(
    groups: Sequence[tuple[str, Series]], model: str, *, title: str, y_title: str
) -> Figure:
    """Several series (``(legend name, series)``) on one axis."""
    traces: list[Figure] = []
    for i, (name, series) in enumerate(groups):
        traces.extend(series_traces(series, model, name=name, color=_PALETTE[i % len(_PALETTE)]))
    return {"data": traces, "layout": _layout(title, y_title)}


def flags_figure(points: Sequence[FlaggedPoint], model: str, *, title: str) -> Figure:
    """Flagged windows: time across, feature (and check) down; a click opens the window."""
    by_check: dict[str, list[FlaggedPoint]] = {}
    for p in points:
        by_check.setdefault(p.check, []).append(p)
    traces = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": check,
            "x": _iso(p.t for p in group),
            "y": [p.feature for p in group],
            "marker": {
                "size": 8,
                "symbol": "square",
                "color": _PALETTE[i % len(_PALETTE)] if check != "drift" else RED,
            },
            "customdata": [window_url(model, p.run) for p in group],
        }
        for i, (check, group) in enumerate(sorted(by_check.items()))
    ]
    layout = _layout(title, "feature")
    layout["yaxis"]["type"] = "category"
    return {"data": traces, "layout": layout}


def jobs_figure(jobs: Sequence[JobRunItem], *, title: str) -> Figure:
    """Job durations (seconds) at their start, one colour per outcome."""
    colors = {"succeeded": GREEN, "failed": RED, "skipped": GREY, "running": BLUE}
    by_status: dict[str, list[JobRunItem]] = {}
    for job in jobs:
        by_status.setdefault(job.status, []).append(job)
    traces = [
        {
            "type": "bar",
            "name": status,
            "x": _iso(j.started_at for j in group),
            "y": [j.seconds or 0 for j in group],
            "text": [j.job for j in group],
            "marker": {"color": colors.get(status, ORANGE)},
        }
        for status, group in sorted(by_status.items())
    ]
    return {"data": traces, "layout": _layout(title, "seconds")}
