"""The label-free estimate in the HTML report's performance section: estimated beside
realised metrics, the estimate's assumptions and calibration, and both over time.

Kept apart from ``_html`` (already long); it draws with the same helpers.

>>> import numpy as np
>>> from shipyard.monitoring import CBPE
>>> P = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
>>> estimate = CBPE(calibration="none").fit(P, [0, 1, 0, 1], [0, 1]).estimate(P)
>>> "CBPE estimate" in estimate_html(estimate, None, None, None)
True
>>> estimate_html(None, "No label-free estimate: a regressor.", None, None)
'<p class="note">No label-free estimate: a regressor.</p>'
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from shipyard.monitoring._cbpe import PREFIX, PerformanceEstimate
from shipyard.monitoring._html import _e, _layout, _number, figure_html
from shipyard.monitoring._performance import PerformanceReport

#: The metrics drawn over time, estimated (dashed, with its band) beside realised.
DRAWN = ("accuracy", "f1", "roc_auc")
_COLOURS = {"accuracy": "#1565c0", "f1": "#2e7d32", "roc_auc": "#6a1b9a"}


def estimate_html(
    estimate: PerformanceEstimate | None,
    note: str | None,
    performance: PerformanceReport | None,
    history: pd.DataFrame | None,
    *,
    number: int = 10_100,
) -> str:
    """The estimate's part of the performance section (``note``: why there is none)."""
    if estimate is None:
        return f'<p class="note">{_e(note)}</p>' if note else ""
    realised = {m.name: m for m in performance.metrics} if performance else {}
    labelled = performance.n_used if performance else 0
    rows = []
    for m in estimate.metrics:
        r = realised.get(m.name)
        rows.append(
            f"<tr><td>{_e(m.name)}</td><td class='num'>{_number(m.value)}</td>"
            f"<td class='num'>{_number(m.ci_low)} .. {_number(m.ci_high)}</td>"
            f"<td class='num'>{_number(r.value if r else None)}</td>"
            f"<td class='num'>{_number(r.ci_low if r else None)} .. "
            f"{_number(r.ci_high if r else None)}</td><td>{_e(m.reason or '')}</td></tr>"
        )
    calibration = "; ".join(
        f"class {_e(c.label)}: {c.method} (Brier {c.brier_before:.4f}"
        + (f" vs {c.brier_after:.4f} isotonic out of fold" if c.brier_after is not None else "")
        + f", {_e(c.reason)})"
        for c in estimate.calibration
    )
    parts = [
        f'<h3 id="estimate">Estimated without labels (CBPE, {_e(estimate.average)})</h3>',
        f'<p class="note">Estimated on all {estimate.n:,} predictions of the window; realised '
        f"on the {labelled:,} with labels. {_e(estimate.summary())}</p>",
        f'<p class="note">Interval: {_e(estimate.interval)}. Calibration: {calibration}.</p>',
        "<table><thead><tr><th>metric</th><th>estimated</th><th>interval</th>"
        "<th>realised</th><th>realised interval</th><th>note</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>",
    ]
    if history is not None and not history.empty:
        figure = _over_time(history)
        if figure is not None:
            parts.append(figure_html(figure, number))
    return "\n".join(parts)


def _over_time(history: pd.DataFrame) -> go.Figure | None:
    frame = history.assign(window_end=pd.to_datetime(history["window_end"], utc=True))
    fig = go.Figure(layout=_layout("estimated (dashed) vs realised over time", height=320))
    drawn = False
    for name in DRAWN:
        estimated = _series(frame, f"{PREFIX}{name}")
        if estimated.empty:
            continue
        drawn = True
        colour = _COLOURS[name]
        x = [t.isoformat() for t in estimated["window_end"]]
        low = _series(frame, f"{PREFIX}{name}.ci_low")
        high = _series(frame, f"{PREFIX}{name}.ci_high")
        if len(low) == len(high) == len(estimated):
            fig.add_scatter(
                x=x + x[::-1],
                y=high["value"].astype(float).tolist() + low["value"].astype(float).tolist()[::-1],
                fill="toself",
                opacity=0.15,
                line={"width": 0},
                fillcolor=colour,
                name=_e(f"estimated {name} interval"),
                showlegend=False,
            )
        fig.add_scatter(
            x=x,
            y=estimated["value"].astype(float).tolist(),
            name=_e(f"estimated {name}"),
            mode="lines+markers",
            line={"dash": "dash", "color": colour},
        )
        realised = _series(frame, name)
        if not realised.empty:
            fig.add_scatter(
                x=[t.isoformat() for t in realised["window_end"]],
                y=realised["value"].astype(float).tolist(),
                name=_e(f"realised {name}"),
                mode="lines+markers",
                line={"color": colour},
            )
    fig.update_yaxes(gridcolor="#eee")
    return fig if drawn else None


def _series(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    return frame[frame["metric"] == metric].sort_values("window_end")
