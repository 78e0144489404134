"""Every router of the UI, in one list (each area's pages and its ``/api/`` twin live in its
own module)."""

from __future__ import annotations

from fastapi import APIRouter

from shipyard.ui import (
    _actions,
    _approvals,
    _audit,
    _catalogue,
    _groups,
    _login,
    _model,
    _monitoring,
    _version,
)

ROUTERS: list[APIRouter] = [
    _login.router,
    _catalogue.router,
    _model.router,
    _groups.router,
    _version.router,
    _monitoring.router,
    _approvals.router,
    _actions.router,
    _audit.router,
]
