"""What the web UI, its JSON API, the CLI's ``audit trace`` and the e-mailed digests show:
read models over the store (and the prediction log), one function per page, each returning
a pydantic model (so ``/api/`` documents it in its OpenAPI schema).

Reads only: stored monitoring results and health, the registry, the audit chain, the log's
partitions of one day for a trace. Never a whole prediction log per request.

- ``catalogue``: every model with its health in plain words, searched, filtered, paginated.
- ``model_page``: versions, approvals, gates, the alias timeline, traffic, criterion, alerts.
- ``monitoring_page`` and ``window_detail``: the monitoring series and one window's detail.
"""

from shipyard.views._catalogue import (
    HEALTH_FILTERS,
    PAGE_SIZE,
    STAGE_FILTERS,
    Catalogue,
    CatalogueModel,
    catalogue,
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
from shipyard.views._window import SampleRows, WindowDetail, window_detail

__all__ = [
    "HEALTH_FILTERS",
    "MAX_DAYS",
    "MAX_POINTS",
    "PAGE_SIZE",
    "STAGE_FILTERS",
    "AlertItem",
    "AliasEvent",
    "AliasMark",
    "Catalogue",
    "CatalogueModel",
    "FeatureFlags",
    "FlaggedPoint",
    "Health",
    "JobRunItem",
    "LiveCriterion",
    "ModelPage",
    "MonitoringPage",
    "ProductionStep",
    "SampleRows",
    "Series",
    "TrafficItem",
    "VersionItem",
    "WindowDetail",
    "catalogue",
    "check_days",
    "judge",
    "model_page",
    "monitoring_page",
    "quality_words",
    "window_detail",
]
