"""What every UI route needs, kept on ``app.state.ui`` (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request

from shipyard.auth import LoginLimiter
from shipyard.config import ProjectConfig
from shipyard.settings import UiSettings
from shipyard.store import Store


@dataclass(frozen=True)
class UiContext:
    """The store, the parsed project file, the UI's settings, where the prediction log lives
    (``None``: no log, the trace page says so), the key signing cookies and the count of
    failed logins."""

    store: Store
    project: ProjectConfig
    settings: UiSettings
    predlog: Path | None
    secret: str
    limiter: LoginLimiter = field(default_factory=LoginLimiter)


def ui_context(request: Request) -> UiContext:
    """The ``UiContext`` of the app serving ``request``."""
    ctx: UiContext = request.app.state.ui
    return ctx
