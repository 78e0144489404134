"""Fixtures of the scheduler tests: the real SMTP / HTTP / hanging servers of the alerting tests,
and ``make_scheduler`` building a ``Scheduler`` from a ``shipyard.toml`` text on a test store."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "alerting"))  # alerting_support

from alerting_support import (  # noqa: F401 - fixtures are found by name
    hanging_port,
    http_server,
    smtp_server,
)

from shipyard.alerting import load_alert_config
from shipyard.scheduler import Scheduler, load_scheduler_config
from shipyard.store import Store

MakeScheduler = Callable[..., Scheduler]


@pytest.fixture
def make_scheduler(store: Store, tmp_path: Path) -> MakeScheduler:
    """``make_scheduler(toml, owner=None)``: write ``shipyard.toml`` and build a scheduler."""

    def make(toml: str, *, owner: str | None = None) -> Scheduler:
        project = tmp_path / "shipyard.toml"
        project.write_text(toml, encoding="utf-8")
        alerts = load_alert_config(project)
        config = load_scheduler_config(project, alerts.channels)
        return Scheduler(
            store,
            config,
            alerts.channels,
            actor="scheduler",
            project=project,
            log_root=tmp_path / "predictions",
            owner=owner,
        )

    return make
