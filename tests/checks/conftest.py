"""Fixtures of the checks tests: the real HTTP and SMTP servers of the alerting tests (the
retraining notifies approvers through them)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "alerting"))  # alerting_support

from alerting_support import (  # noqa: F401 - fixtures are found by name
    http_server,
    smtp_server,
)
