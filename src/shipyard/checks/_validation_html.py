"""The HTML report of one validation: the verdict, the rows used, every gate with its value
and limit, and plots of the metrics' intervals and of the explanations (candidate against
champion). Built from the stored gate record only, so it can be written again at any time."""

from __future__ import annotations

from typing import Any

from shipyard.checks._pages import render_page
from shipyard.config import ModelPolicy
from shipyard.registry import GateRecord


def render_validation(record: GateRecord, policy: ModelPolicy) -> str:
    """The report page of ``record`` (self-contained: plotly inlined, no address loaded)."""
    from markupsafe import Markup

    from shipyard.monitoring import figure_html

    gates: list[dict[str, Any]] = list(record.report.get("gates", []))
    figures = [f for f in (_metrics_figure(gates), _explain_figure(gates)) if f is not None]
    return render_page(
        "validation.html.j2",
        plots=bool(figures),
        title=f"Validation of {record.model_name} v{record.version}",
        record=record,
        policy=policy,
        gates=gates,
        figures=[Markup(figure_html(fig, i)) for i, fig in enumerate(figures)],
        tables=[(g["name"], *table) for g in gates if (table := _table(g)) is not None],
    )


def _table(gate: dict[str, Any]) -> tuple[list[str], list[list[Any]]] | None:
    """A gate's per-slice, per-group or per-change table (its header and rows), when its data
    has one. Rows may differ in keys (a type change has ``before``/``after``, a removed column
    has not): the header is every key, in order of first appearance."""
    data = gate.get("data") or {}
    for key in ("groups", "slices", "changes", "features", "top"):
        value = data.get(key)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            rows = value[:50]
            header = list(dict.fromkeys(k for row in rows for k in row))
            return header, [[row.get(k) for k in header] for row in rows]
    return None


def _metrics_figure(gates: list[dict[str, Any]]) -> Any:
    """Each metric's value and interval, candidate beside champion."""
    import plotly.graph_objects as go

    names: list[str] = []
    arms: dict[str, tuple[list[Any], list[Any], list[Any]]] = {
        "candidate": ([], [], []),
        "champion": ([], [], []),
    }
    for gate in gates:
        data = gate.get("data") or {}
        if gate.get("kind") != "metric" or "candidate" not in data:
            continue
        names.append(gate["name"])
        for arm, (values, lows, highs) in arms.items():
            point = data.get(arm) or {}
            values.append(point.get("value"))
            lows.append(point.get("ci_low"))
            highs.append(point.get("ci_high"))
    if not names:
        return None
    fig = go.Figure()
    for arm, (values, lows, highs) in arms.items():
        if all(v is None for v in values):
            continue
        minus = [
            v - lo if v is not None and lo is not None else 0
            for v, lo in zip(values, lows, strict=True)
        ]
        plus = [
            hi - v if v is not None and hi is not None else 0
            for v, hi in zip(values, highs, strict=True)
        ]
        fig.add_trace(
            go.Scatter(
                x=values,
                y=names,
                mode="markers",
                name=arm,
                error_x={"type": "data", "array": plus, "arrayminus": minus},
            )
        )
    fig.update_layout(title="Metrics with intervals", height=120 + 40 * len(names))
    return fig


def _explain_figure(gates: list[dict[str, Any]]) -> Any:
    """Top features by importance, candidate beside champion."""
    import plotly.graph_objects as go

    for gate in gates:
        data = gate.get("data") or {}
        if gate.get("kind") != "explain":
            continue
        fig = go.Figure()
        for arm in ("candidate", "champion"):
            top = data.get(arm) or {}
            features = top.get("top") if isinstance(top, dict) else None
            if not features:
                continue
            fig.add_trace(
                go.Bar(
                    x=[f.get("importance") for f in features],
                    y=[f.get("feature") for f in features],
                    orientation="h",
                    name=arm,
                )
            )
        if fig.data:
            fig.update_layout(title="Feature importance", barmode="group", height=400)
            return fig
    return None
