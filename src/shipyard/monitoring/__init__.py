"""Monitoring: input and prediction drift and data quality of a current window against the
reference profile stored in a model's archive.

``compute_drift`` streams chunks of the current window into bounded per-feature counts
(``DriftAccumulator``), scores every applicable drift test (``DRIFT_TESTS``), lets the rule in
``DriftConfig`` pick the test that decides each feature, and checks data quality; it returns a
JSON-ready ``DriftReport``. Prediction drift is the same call on the archive's ``"outputs"``
profile and the logged outputs. ``render_defaults()`` documents the default rule.

>>> import pandas as pd
>>> from shipyard.dataset import profile_frame
>>> train = pd.DataFrame({"x": [float(i % 97) for i in range(2000)]})
>>> report = compute_drift(profile_frame(train), train)
>>> report.drifted, report.quality_breached
(False, False)
"""

from shipyard.monitoring._accumulate import DriftAccumulator
from shipyard.monitoring._config import (
    DriftConfig,
    QualityConfig,
    TestRule,
    Threshold,
    render_defaults,
)
from shipyard.monitoring._drift import (
    CSI,
    DRIFT_TESTS,
    EPSILON,
    PSI,
    ChiSquare,
    DriftScore,
    DriftTest,
    JensenShannon,
    KolmogorovSmirnov,
    Wasserstein,
    get_drift_test,
    psi_band,
    stability_index,
)
from shipyard.monitoring._html import render_html
from shipyard.monitoring._quality import QualityMetric, quality_metrics
from shipyard.monitoring._report import DriftReport, FeatureReport, build_report, compute_drift
from shipyard.monitoring._results import DATASET, MonitoringResults, report_rows
from shipyard.monitoring._state import CategoricalState, NumericState
from shipyard.monitoring._window import logged_window, parse_window

__all__ = [
    "CSI",
    "DATASET",
    "DRIFT_TESTS",
    "EPSILON",
    "PSI",
    "CategoricalState",
    "ChiSquare",
    "DriftAccumulator",
    "DriftConfig",
    "DriftReport",
    "DriftScore",
    "DriftTest",
    "FeatureReport",
    "JensenShannon",
    "KolmogorovSmirnov",
    "MonitoringResults",
    "NumericState",
    "QualityConfig",
    "QualityMetric",
    "TestRule",
    "Threshold",
    "Wasserstein",
    "build_report",
    "compute_drift",
    "get_drift_test",
    "logged_window",
    "parse_window",
    "psi_band",
    "quality_metrics",
    "render_defaults",
    "render_html",
    "report_rows",
    "stability_index",
]
