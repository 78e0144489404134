"""The data and the check shared by the engine equality tests (``test_spark_engine``,
``test_engines``): 20 mixed features plus awkward ones, and "two drift reports agree". Their
reference profile and schema are the ``reference`` and ``schema`` fixtures of conftest."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from shipyard.monitoring import DriftReport

TOLERANCE = 1e-9


MakeFrame = Callable[..., pd.DataFrame]


def edgy_frame(make_frame: MakeFrame, n: int, seed: int, *, drift: bool) -> pd.DataFrame:
    """The 20 mixed features plus the awkward ones: infinities, a constant and an all-NaN
    column, integer and float categories, numbers stored as text, integral floats."""
    frame = make_frame(n, seed, drift=drift)
    rng = np.random.default_rng(seed + 1)
    edgy = rng.normal(0, 1, n)
    edgy[rng.random(n) < 0.01] = np.inf
    edgy[rng.random(n) < 0.01] = -np.inf
    edgy[rng.random(n) < 0.02] = np.nan
    if drift:
        edgy[:50] = 1e300  # far above the reference range
    frame["edgy"] = edgy
    frame["constant"] = 7.0 if not drift else np.where(rng.random(n) < 0.5, 7.0, 8.0)
    frame["empty"] = np.full(n, np.nan)
    frame["grade"] = pd.array(rng.integers(1, 6 if not drift else 8, n), dtype="int64")
    text = rng.normal(5, 2, n).round(3).astype(str).astype(object)
    text[rng.random(n) < 0.01] = "n/a" if drift else None
    frame["as_text"] = text
    frame["level"] = rng.choice([0.5, 1.5, 2.5], n)
    frame["counted"] = rng.poisson(4, n).astype(np.float64)
    if drift:
        frame.loc[frame.index[:20], "counted"] = 2.5  # non-integral: type violations
    return frame


def assert_same_report(ours: DriftReport, theirs: DriftReport) -> None:
    assert ours.n_rows == theirs.n_rows and ours.drifted == theirs.drifted
    assert ours.flagged() == theirs.flagged()
    assert ours.unexpected_columns == theirs.unexpected_columns
    for a, b in zip(ours.features, theirs.features, strict=True):
        assert (a.name, a.test, a.drifted, a.quality_breached, a.n_values) == (
            b.name,
            b.test,
            b.drifted,
            b.quality_breached,
            b.n_values,
        )
        assert [s.name for s in a.scores] == [s.name for s in b.scores]
        for sa, sb in zip(a.scores, b.scores, strict=True):
            assert sa.drifted == sb.drifted, (a.name, sa.name)
            for x, y in ((sa.value, sb.value), (sa.statistic, sb.statistic)):
                if x is None or y is None or np.isnan(x):
                    assert x is y or (x is not None and y is not None and np.isnan(y))
                else:
                    assert abs(x - y) <= TOLERANCE, (a.name, sa.name, x, y)
        for qa, qb in zip(a.quality, b.quality, strict=True):
            assert (qa.name, qa.count, qa.breached) == (qb.name, qb.count, qb.breached)
