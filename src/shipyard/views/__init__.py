"""What the web UI, its JSON API, the CLI's ``audit trace`` and the e-mailed digests show:
read models over the store (and the prediction log), one function per page, each returning
a pydantic model (so ``/api/`` documents it in its OpenAPI schema).

Reads only: stored monitoring results and health, the registry, the audit chain, the log's
partitions of one day for a trace. Never a whole prediction log per request.
"""

from shipyard.views._approvals import (
    ApprovalsView,
    MetricComparison,
    PendingVersion,
    approvals_view,
    compare_metrics,
)
from shipyard.views._audit import (
    PAGE_SIZE,
    AuditEventView,
    AuditFilters,
    AuditPage,
    ChainCache,
    ChainStatus,
    audit_page,
)
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

__all__ = [
    "PAGE_SIZE",
    "TIME_EXAMPLE",
    "ApprovalsView",
    "ArchiveView",
    "AuditEventView",
    "AuditFilters",
    "AuditPage",
    "ChainCache",
    "ChainStatus",
    "GateReportView",
    "GateRow",
    "LineageView",
    "MetricComparison",
    "PendingVersion",
    "RequestView",
    "RiskView",
    "ServedAt",
    "Trace",
    "TraceDataset",
    "TraceEnvironment",
    "TraceGit",
    "TraceLabel",
    "TraceRun",
    "VersionView",
    "approvals_view",
    "audit_page",
    "compare_metrics",
    "parse_at",
    "request_view",
    "served_at",
    "trace_prediction",
    "version_view",
]
