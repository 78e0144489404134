"""Monitoring: input and prediction drift and data quality of a current window against the
reference profile stored in a model's archive.

``compute_drift`` streams chunks of the current window into bounded per-feature counts
(``DriftAccumulator``), scores every applicable drift test (``DRIFT_TESTS``), lets the rule in
``DriftConfig`` pick the test that decides each feature, and checks data quality; it returns a
JSON-ready ``DriftReport``. Prediction drift is the same call on the archive's ``"outputs"``
profile and the logged outputs. ``render_defaults()`` documents the default rule. Performance
(``compute_performance``, with intervals) and service figures (``compute_service``) come from a
log window's predictions, labels and records; ``spark_accumulate`` counts on Spark and
``dask_accumulate`` on Dask instead.
``CBPE`` estimates a classifier's performance without labels from its probabilities,
calibrated on labelled reference rows (confidence-based, as NannyML), into a
``PerformanceEstimate`` stated with its assumptions. ``MonitoringResults`` keeps reports as
time series, ``render_html`` draws them.

This package is the statistics and their state. It may import ``dataset``, ``store``,
``audit``, ``errors`` and the prediction log's readers, never ``alerting``, ``registry`` or
``serving``: the pipeline that loads a version, raises alerts and judges canaries is
``shipyard.checks``, above it.

>>> import pandas as pd
>>> from shipyard.dataset import profile_frame
>>> train = pd.DataFrame({"x": [float(i % 97) for i in range(2000)]})
>>> report = compute_drift(profile_frame(train), train)
>>> report.drifted, report.quality_breached
(False, False)
"""

from typing import TYPE_CHECKING

from shipyard._lazy import lazy_attributes as _lazy_attributes
from shipyard.monitoring._accumulate import DriftAccumulator, Progress, chunk_rows
from shipyard.monitoring._calibration import ClassCalibration
from shipyard.monitoring._cbpe import CBPE, EstimatedMetric, PerformanceEstimate
from shipyard.monitoring._config import (
    DriftConfig,
    QualityConfig,
    TestRule,
    Threshold,
    render_defaults,
)
from shipyard.monitoring._dask import dask_accumulate
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
from shipyard.monitoring._intervals import (
    bootstrap,
    newcombe_interval,
    percentile_interval,
    weighted_auc,
    wilson_interval,
)
from shipyard.monitoring._performance import (
    LabelCoverage,
    MetricEstimate,
    PerformanceReport,
    compute_performance,
)
from shipyard.monitoring._performance_data import labelled_window
from shipyard.monitoring._quality import QualityMetric, quality_metrics
from shipyard.monitoring._report import DriftReport, FeatureReport, build_report, compute_drift
from shipyard.monitoring._rows import MetricRow
from shipyard.monitoring._service import (
    ServiceGroup,
    ServiceReport,
    compute_service,
    service_window,
)
from shipyard.monitoring._spark import (
    spark_accumulate,
    spark_errors,
    spark_message,
    spark_session,
)
from shipyard.monitoring._state import CategoricalState, NumericState
from shipyard.monitoring._window import logged_window, window_chunks

if TYPE_CHECKING:
    from shipyard.monitoring._html import figure_html, performance_section, plotly_js, render_html
    from shipyard.monitoring._results import MonitoringResults

# Loaded on first use (PEP 562): the results store pulls in SQLAlchemy and the audit log, the
# HTML report plotly; a drift check over a file needs neither.
_LAZY = {
    "figure_html": "shipyard.monitoring._html",
    "performance_section": "shipyard.monitoring._html",
    "plotly_js": "shipyard.monitoring._html",
    "render_html": "shipyard.monitoring._html",
    "MonitoringResults": "shipyard.monitoring._results",
}


__getattr__, __dir__ = _lazy_attributes("shipyard.monitoring", _LAZY, globals())


__all__ = [
    "CBPE",
    "CSI",
    "DRIFT_TESTS",
    "EPSILON",
    "PSI",
    "CategoricalState",
    "ChiSquare",
    "ClassCalibration",
    "DriftAccumulator",
    "DriftConfig",
    "DriftReport",
    "DriftScore",
    "DriftTest",
    "EstimatedMetric",
    "FeatureReport",
    "JensenShannon",
    "KolmogorovSmirnov",
    "LabelCoverage",
    "MetricEstimate",
    "MetricRow",
    "MonitoringResults",
    "NumericState",
    "PerformanceEstimate",
    "PerformanceReport",
    "Progress",
    "QualityConfig",
    "QualityMetric",
    "ServiceGroup",
    "ServiceReport",
    "TestRule",
    "Threshold",
    "Wasserstein",
    "bootstrap",
    "build_report",
    "chunk_rows",
    "compute_drift",
    "compute_performance",
    "compute_service",
    "dask_accumulate",
    "figure_html",
    "get_drift_test",
    "labelled_window",
    "logged_window",
    "newcombe_interval",
    "percentile_interval",
    "performance_section",
    "plotly_js",
    "psi_band",
    "quality_metrics",
    "render_defaults",
    "render_html",
    "service_window",
    "spark_accumulate",
    "spark_errors",
    "spark_message",
    "spark_session",
    "stability_index",
    "weighted_auc",
    "wilson_interval",
    "window_chunks",
]
