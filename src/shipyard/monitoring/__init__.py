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

from shipyard.monitoring._accumulate import DriftAccumulator, chunk_rows
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
from shipyard.monitoring._html import performance_section, render_html
from shipyard.monitoring._intervals import bootstrap, percentile_interval, wilson_interval
from shipyard.monitoring._performance import (
    LabelCoverage,
    MetricEstimate,
    PerformanceReport,
    compute_performance,
)
from shipyard.monitoring._performance_data import (
    label_delay_setting,
    labelled_window,
    parse_label_delay,
)
from shipyard.monitoring._quality import QualityMetric, quality_metrics
from shipyard.monitoring._report import DriftReport, FeatureReport, build_report, compute_drift
from shipyard.monitoring._results import DATASET, MonitoringResults, report_rows
from shipyard.monitoring._rows import MetricRow
from shipyard.monitoring._service import (
    ServiceGroup,
    ServiceReport,
    compute_service,
    service_window,
)
from shipyard.monitoring._spark import (
    grid_splits,
    read_spark_table,
    spark_accumulate,
    spark_errors,
    spark_jobs,
    spark_message,
    spark_session,
    spark_window,
)
from shipyard.monitoring._state import CategoricalState, NumericState
from shipyard.monitoring._window import file_chunks, logged_window, parse_window, window_chunks

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
    "LabelCoverage",
    "MetricEstimate",
    "MetricRow",
    "MonitoringResults",
    "NumericState",
    "PerformanceReport",
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
    "file_chunks",
    "get_drift_test",
    "grid_splits",
    "label_delay_setting",
    "labelled_window",
    "logged_window",
    "parse_label_delay",
    "parse_window",
    "percentile_interval",
    "performance_section",
    "psi_band",
    "quality_metrics",
    "read_spark_table",
    "render_defaults",
    "render_html",
    "report_rows",
    "service_window",
    "spark_accumulate",
    "spark_errors",
    "spark_jobs",
    "spark_message",
    "spark_session",
    "spark_window",
    "stability_index",
    "wilson_interval",
    "window_chunks",
]
