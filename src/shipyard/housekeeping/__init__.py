"""Housekeeping: retention of prediction logs and monitoring results (``shipyard gc``)."""

from shipyard.housekeeping._gc import GcReport, collect_garbage

__all__ = ["GcReport", "collect_garbage"]
