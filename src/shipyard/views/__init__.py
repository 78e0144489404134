"""What the web UI, its JSON API, the CLI's ``audit trace`` and the e-mailed digests show:
read models over the store (and the prediction log), one function per page, each returning
a pydantic model (so ``/api/`` documents it in its OpenAPI schema).

Reads only: stored monitoring results and health, the registry, the audit chain, the log's
partitions of one day for a trace. Never a whole prediction log per request.

- ``catalogue``: every model with its health in plain words, searched, filtered, paginated.
- ``model_page``: versions, approvals, gates, the alias timeline, traffic, criterion, alerts.
- ``monitoring_page`` and ``window_detail``: the monitoring series and one window's detail.
"""

from shipyard.views._approvals import (
    ApprovalsView,
    MetricComparison,
    PendingVersion,
    approvals_view,
    compare_metrics,
)
from shipyard.views._audit import (
    PAGE_SIZE as AUDIT_PAGE_SIZE,
)
from shipyard.views._audit import (
    AuditEventView,
    AuditFilters,
    AuditPage,
    ChainCache,
    ChainStatus,
    audit_page,
)
from shipyard.views._catalogue import (
    HEALTH_FILTERS,
    STAGE_FILTERS,
    Catalogue,
    CatalogueModel,
    catalogue,
)
from shipyard.views._catalogue import (
    PAGE_SIZE as CATALOGUE_PAGE_SIZE,
)
from shipyard.views._health import Health, LiveCriterion, judge, quality_words
from shipyard.views._model import (
    AlertItem,
    AliasEvent,
    ModelPage,
    ProductionStep,
    TrafficItem,
    VersionItem,
    model_page,
)
from shipyard.views._monitoring import (
    FeatureFlags,
    FlaggedPoint,
    MonitoringPage,
    check_days,
    monitoring_page,
)
from shipyard.views._series import MAX_DAYS, MAX_POINTS, Series
from shipyard.views._timeline import AliasMark, JobRunItem
from shipyard.views._trace import (
    TIME_EXAMPLE,
    ServedAt,
    Trace,
    TraceDataset,
    TraceEnvironment,
    TraceGit,
    TraceLabel,
    TraceRun,
    parse_at,
    served_at,
    trace_prediction,
)
from shipyard.views._version import (
    ArchiveView,
    GateReportView,
    GateRow,
    LineageView,
    RequestView,
    RiskView,
    VersionView,
    request_view,
    version_view,
)
from shipyard.views._window import SampleRows, WindowDetail, window_detail

__all__ = [
    "AUDIT_PAGE_SIZE",
    "CATALOGUE_PAGE_SIZE",
    "HEALTH_FILTERS",
    "MAX_DAYS",
    "MAX_POINTS",
    "STAGE_FILTERS",
    "TIME_EXAMPLE",
    "AlertItem",
    "AliasEvent",
    "AliasMark",
    "ApprovalsView",
    "ArchiveView",
    "AuditEventView",
    "AuditFilters",
    "AuditPage",
    "Catalogue",
    "CatalogueModel",
    "ChainCache",
    "ChainStatus",
    "FeatureFlags",
    "FlaggedPoint",
    "GateReportView",
    "GateRow",
    "Health",
    "JobRunItem",
    "LineageView",
    "LiveCriterion",
    "MetricComparison",
    "ModelPage",
    "MonitoringPage",
    "PendingVersion",
    "ProductionStep",
    "RequestView",
    "RiskView",
    "SampleRows",
    "Series",
    "ServedAt",
    "Trace",
    "TraceDataset",
    "TraceEnvironment",
    "TraceGit",
    "TraceLabel",
    "TraceRun",
    "TrafficItem",
    "VersionItem",
    "VersionView",
    "WindowDetail",
    "approvals_view",
    "audit_page",
    "catalogue",
    "check_days",
    "compare_metrics",
    "judge",
    "model_page",
    "monitoring_page",
    "parse_at",
    "quality_words",
    "request_view",
    "served_at",
    "trace_prediction",
    "version_view",
    "window_detail",
]
