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

from shipyard.alerting import AlertConfig
from shipyard.config import load_project
from shipyard.scheduler import Scheduler, SchedulerConfig
from shipyard.store import Store

MakeScheduler = Callable[..., Scheduler]


@pytest.fixture
def make_scheduler(store: Store, tmp_path: Path) -> MakeScheduler:
    """``make_scheduler(toml, owner=None)``: write ``shipyard.toml`` and build a scheduler."""

    def make(toml: str, *, owner: str | None = None) -> Scheduler:
        path = tmp_path / "shipyard.toml"
        path.write_text(toml, encoding="utf-8")
        project = load_project(path)
        alerts = AlertConfig.from_project(project)
        return Scheduler(
            store,
            SchedulerConfig.from_project(project),
            alerts.channels,
            actor="scheduler",
            project=project,
            log_root=tmp_path / "predictions",
            owner=owner,
        )

    return make
