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

from typing import TYPE_CHECKING

from shipyard._lazy import lazy_attributes as _lazy_attributes
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
from shipyard.monitoring._intervals import bootstrap, percentile_interval, wilson_interval
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
from shipyard.monitoring._window import file_chunks, logged_window, window_chunks

if TYPE_CHECKING:
    from shipyard.monitoring._canary import (
        CanaryArm,
        CanaryGate,
        CanaryRules,
        CanaryVerdict,
        check_canary,
        newcombe_interval,
    )
    from shipyard.monitoring._html import performance_section, render_html
    from shipyard.monitoring._results import DATASET, MonitoringResults, report_rows
    from shipyard.monitoring._run import RecordedRun, record_monitoring_run
    from shipyard.monitoring._sections import (
        label_delay,
        performance_and_service,
        performance_html,
        window_report_html,
    )

# Loaded on first use (PEP 562): the canary gate, recorded runs, results store and HTML
# sections pull in the registry (scikit-learn via packaging), the store (SQLAlchemy, Alembic),
# alerting (httpx) and plotly; a drift check over a file needs none of them.
_LAZY = {
    "CanaryArm": "shipyard.monitoring._canary",
    "CanaryGate": "shipyard.monitoring._canary",
    "CanaryRules": "shipyard.monitoring._canary",
    "CanaryVerdict": "shipyard.monitoring._canary",
    "check_canary": "shipyard.monitoring._canary",
    "newcombe_interval": "shipyard.monitoring._canary",
    "performance_section": "shipyard.monitoring._html",
    "render_html": "shipyard.monitoring._html",
    "DATASET": "shipyard.monitoring._results",
    "MonitoringResults": "shipyard.monitoring._results",
    "report_rows": "shipyard.monitoring._results",
    "RecordedRun": "shipyard.monitoring._run",
    "record_monitoring_run": "shipyard.monitoring._run",
    "label_delay": "shipyard.monitoring._sections",
    "performance_and_service": "shipyard.monitoring._sections",
    "performance_html": "shipyard.monitoring._sections",
    "window_report_html": "shipyard.monitoring._sections",
}


__getattr__, __dir__ = _lazy_attributes("shipyard.monitoring", _LAZY, globals())


__all__ = [
    "CSI",
    "DATASET",
    "DRIFT_TESTS",
    "EPSILON",
    "PSI",
    "CanaryArm",
    "CanaryGate",
    "CanaryRules",
    "CanaryVerdict",
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
    "RecordedRun",
    "ServiceGroup",
    "ServiceReport",
    "TestRule",
    "Threshold",
    "Wasserstein",
    "bootstrap",
    "build_report",
    "check_canary",
    "chunk_rows",
    "compute_drift",
    "compute_performance",
    "compute_service",
    "file_chunks",
    "get_drift_test",
    "grid_splits",
    "label_delay",
    "labelled_window",
    "logged_window",
    "newcombe_interval",
    "percentile_interval",
    "performance_and_service",
    "performance_html",
    "performance_section",
    "psi_band",
    "quality_metrics",
    "read_spark_table",
    "record_monitoring_run",
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
    "window_report_html",
]
