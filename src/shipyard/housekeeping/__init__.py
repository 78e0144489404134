"""Housekeeping: retention of prediction logs, monitoring results and job runs, and the
archive files of archived versions (``shipyard gc``).

The default ages are the ``[retention]`` table of the parsed project file
(``shipyard.config.RetentionTable``); ``collect_garbage`` takes the ages explicitly.
"""

from shipyard.housekeeping._gc import GcReport, collect_garbage

__all__ = [
    "GcReport",
    "collect_garbage",
]
