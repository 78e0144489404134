"""The small plot of a digest: one metric over the last days, and the line it must stay on
the right side of, as a PNG that every mail client shows (no script, no remote image).

Drawn with matplotlib's Agg canvas on a ``Figure`` made here (never ``pyplot``: no global
figure state, no GUI backend), 480 x 160 pixels.

>>> png = metric_png([datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)],
...                  [0.81, 0.79], limit=0.8, label="roc_auc")
>>> png[:8] == PNG_SIGNATURE
True
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime  # noqa: F401 - the docstring's example uses both

#: The first eight bytes of every PNG file.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Size in pixels (width, height) and dots per inch of the image.
SIZE, DPI = (480, 160), 100


def metric_png(
    times: Sequence[datetime],
    values: Sequence[float | None],
    *,
    limit: float | None,
    label: str,
    breach_above: bool = False,
) -> bytes:
    """``values`` over ``times`` with ``limit`` as a dashed line, points on the wrong side of
    it (below, or above with ``breach_above``) in red; PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    figure = Figure(figsize=(SIZE[0] / DPI, SIZE[1] / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.11, 0.22, 0.84, 0.68))
    points = [(t, v) for t, v in zip(times, values, strict=True) if v is not None]
    xs = date2num([t for t, _ in points])
    ys = [v for _, v in points]
    axes.plot(
        xs, ys, color="#0969da", linewidth=1.4, marker="o" if len(xs) < 40 else None, markersize=3
    )
    if limit is not None:
        axes.axhline(limit, color="#6e7781", linestyle="--", linewidth=1)
        bad = [(t, v) for t, v in points if (v > limit if breach_above else v < limit)]
        if bad:
            axes.scatter(
                date2num([t for t, _ in bad]), [v for _, v in bad], color="#cf222e", s=10, zorder=3
            )
    axes.set_title(label, fontsize=8, loc="left")
    axes.tick_params(labelsize=7)
    locator = AutoDateLocator(maxticks=6)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.xaxis.get_offset_text().set_fontsize(7)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()
