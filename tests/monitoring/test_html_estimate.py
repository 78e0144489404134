"""The label-free estimate in the report's performance section: beside the realised metrics,
with its assumptions and calibration, and over time apart from the realised series."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shipyard.monitoring import CBPE, PerformanceEstimate, performance_section


def _estimate() -> PerformanceEstimate:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=1_000)
    P = np.column_stack([1 - p, p])
    return CBPE(resamples=5).fit(P, rng.uniform(size=1_000) < p, [False, True]).estimate(P)


def test_estimate_table_assumptions_and_its_own_chart() -> None:
    estimate = _estimate()
    history = pd.DataFrame(
        {
            "window_end": pd.to_datetime(["2026-12-01", "2026-12-02"] * 4, utc=True),
            "feature": "*",
            "metric": ["accuracy"] * 2
            + ["estimated_accuracy"] * 2
            + ["estimated_accuracy.ci_low"] * 2
            + ["estimated_accuracy.ci_high"] * 2,
            "value": [0.8, 0.7, 0.81, 0.72, 0.78, 0.69, 0.84, 0.75],
        }
    )
    page = performance_section(None, None, history, estimate=estimate)
    assert "Estimated without labels (CBPE, binary (positive class True))" in page
    assert "no concept drift (P(y|x) unchanged)" in page and "Calibration: class True" in page
    assert "estimated (dashed) vs realised over time" in page
    assert "realised accuracy" in page and "estimated accuracy interval" in page
    # The generic chart draws the realised series only.
    generic = page.split('id="estimate"')[0]
    assert "performance over time" in generic and "estimated_accuracy" not in generic


def test_no_estimate_is_one_escaped_line() -> None:
    page = performance_section(None, None, None, estimate_note="No estimate: <regressor>.")
    assert '<p class="note">No estimate: &lt;regressor&gt;.</p>' in page
    assert "Estimated without labels" not in page
