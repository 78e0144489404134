"""Housekeeping: retention of prediction logs, monitoring results and job runs, and the
archive files of archived versions (``shipyard gc``)."""

from shipyard.housekeeping._gc import GcReport, collect_garbage
from shipyard.housekeeping._retention import (
    DEFAULT_RETENTION,
    Retention,
    load_retention,
    parse_age,
)

__all__ = [
    "DEFAULT_RETENTION",
    "GcReport",
    "Retention",
    "collect_garbage",
    "load_retention",
    "parse_age",
]
