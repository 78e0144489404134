"""The monitoring page (``/ui/models/{name}/monitoring``), the drill-down into one window
(``.../monitoring/windows/{run_id}``), their ``/api/`` twins, and plotly.js for the pages."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from shipyard.ui import _plotly
from shipyard.ui._context import ui_context
from shipyard.ui._errors_doc import error_responses
from shipyard.ui._figures import flags_figure, jobs_figure, lines_figure, metric_figure
from shipyard.ui._render import render
from shipyard.ui._session import Identity, viewer
from shipyard.views import (
    MAX_DAYS,
    MonitoringPage,
    ProductionStep,
    WindowDetail,
    monitoring_page,
    window_detail,
)

router = APIRouter()
router.include_router(_plotly.router)

Days = Annotated[int, Query(ge=1, le=MAX_DAYS, description=f"Days to look back, 1 to {MAX_DAYS}.")]
Feature = Annotated[str, Query(max_length=256, description="The feature whose scores to plot.")]


def _read(request: Request, name: str, days: int, feature: str) -> MonitoringPage:
    ctx = ui_context(request)
    return monitoring_page(ctx.store, ctx.project, name, days=days, feature=feature or None)


@router.get("/ui/models/{name}/monitoring", include_in_schema=False)
def monitoring_html(
    request: Request,
    name: str,
    who: Annotated[Identity, Depends(viewer)],
    days: Days = 30,
    feature: Feature = "",
) -> Response:
    view = _read(request, name, days, feature)
    steps = [ProductionStep(start=view.since, version=view.production_version_at_start)] + [
        ProductionStep(start=m.at, version=m.version) for m in view.alias_changes
    ]
    span = {"since": view.since, "until": view.until}
    share = view.drift_share
    figures = {
        "share": metric_figure(
            share,
            name,
            title="Share of drifted features per window (production version overlaid)",
            steps=steps
            if view.production_version_at_start is not None or view.alias_changes
            else [],
            threshold=share.threshold if share else None,
            **span,
        ),
        "drift": flags_figure(
            [p for p in view.flagged if p.check == "drift"], name, title="Drifted features"
        ),
        "quality": flags_figure(
            [p for p in view.flagged if p.check != "drift"], name, title="Data-quality breaches"
        ),
        "feature": lines_figure(
            [(s.metric, s) for s in view.feature_scores],
            name,
            title=f"Scores of {view.feature}" if view.feature else "Scores",
            y_title="score or share",
        ),
        "performance": lines_figure(
            [(s.metric, s) for s in view.performance],
            name,
            title="Performance (realised with 95% intervals; estimated_* without labels)",
            y_title="value",
        ),
        "latency": lines_figure(
            [
                (f"{s.metric} {s.feature.removeprefix('arm:')}", s)
                for s in view.service
                if s.metric.startswith("latency")
            ],
            name,
            title="Latency per arm (ms)",
            y_title="ms",
        ),
        "errors": lines_figure(
            [(s.feature.removeprefix("arm:"), s) for s in view.service if s.metric == "error_rate"],
            name,
            title="Error rate per arm",
            y_title="share of requests refused",
        ),
        "jobs": jobs_figure(view.jobs, title="Job runs (duration)"),
    }
    return render(
        request,
        "monitoring.html.j2",
        title=f"{name}: monitoring",
        view=view,
        figures=figures,
        day_choices=(1, 7, 30, 90, 365),
        model_url=f"/ui/models/{quote(name, safe='')}",
    )


@router.get(
    "/api/models/{name}/monitoring",
    tags=["monitoring"],
    summary="A model's monitoring series over the last days",
    responses=error_responses(400, 401, 403, 404),
)
def monitoring_api(
    request: Request,
    name: str,
    who: Annotated[Identity, Depends(viewer)],
    days: Days = 30,
    feature: Feature = "",
) -> MonitoringPage:
    """Drift per feature, data quality, performance with intervals, service per arm, job
    runs, production changes and the breached windows; each series at most 1000 points."""
    return _read(request, name, days, feature)


def _window(request: Request, name: str, run_id: str) -> WindowDetail:
    ctx = ui_context(request)
    return window_detail(ctx.store, name, run_id, predlog=ctx.predlog)


@router.get("/ui/models/{name}/monitoring/windows/{run_id}", include_in_schema=False)
def window_html(
    request: Request, name: str, run_id: str, who: Annotated[Identity, Depends(viewer)]
) -> Response:
    view = _window(request, name, run_id)
    return render(
        request,
        "window.html.j2",
        title=f"{name}: window {view.window_end:%Y-%m-%d %H:%M}",
        view=view,
        model_url=f"/ui/models/{quote(name, safe='')}",
    )


@router.get(
    "/api/models/{name}/monitoring/windows/{run_id}",
    tags=["monitoring"],
    summary="One monitoring window: every stored result and sample rows of its log",
    responses=error_responses(401, 403, 404),
)
def window_api(
    request: Request, name: str, run_id: str, who: Annotated[Identity, Depends(viewer)]
) -> WindowDetail:
    """The run's results (every metric of every feature) and up to 20 logged predictions."""
    return _window(request, name, run_id)
