"""The catalogue: every model with its health in plain words (``/ui/``), and ``GET
/api/models``: the same page as JSON. Below the models, the model groups whose name,
description or members match the search (``GET /api/groups``, see ``_groups``)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from shipyard.ui._context import ui_context
from shipyard.ui._errors_doc import error_responses
from shipyard.ui._groups import group_items
from shipyard.ui._render import render
from shipyard.ui._session import Identity, viewer
from shipyard.views import HEALTH_FILTERS, STAGE_FILTERS, Catalogue, catalogue

router = APIRouter()

Text = Annotated[str, Query(max_length=200)]
Page = Annotated[int, Query(ge=1, le=100_000, description="Page number, from 1 (50 per page).")]


def _read(request: Request, q: str, team: str, stage: str, health: str, page: int) -> Catalogue:
    ctx = ui_context(request)
    return catalogue(ctx.store, ctx.project, q=q, team=team, stage=stage, health=health, page=page)


@router.get("/ui/", include_in_schema=False)
def catalogue_page(
    request: Request,
    who: Annotated[Identity, Depends(viewer)],
    q: Text = "",
    team: Text = "",
    stage: Text = "",
    health: Text = "",
    page: Page = 1,
) -> Response:
    view = _read(request, q, team, stage, health, page)
    filters = {"q": view.q, "team": view.team, "stage": view.stage, "health": view.health}
    kept = {k: v for k, v in filters.items() if v}

    def page_url(n: int) -> str:
        return "/ui/?" + urlencode({**kept, "page": n})

    return render(
        request,
        "catalogue.html.j2",
        title="Models",
        view=view,
        groups=group_items(ui_context(request).store, view.q),
        stages=STAGE_FILTERS,
        healths=HEALTH_FILTERS,
        previous_url=page_url(view.page - 1) if view.page > 1 else None,
        next_url=page_url(view.page + 1) if view.page < view.pages else None,
    )


@router.get(
    "/api/models",
    tags=["models"],
    summary="The catalogue: every model with its health",
    responses=error_responses(400, 401, 403),
)
def catalogue_api(
    request: Request,
    who: Annotated[Identity, Depends(viewer)],
    q: Text = "",
    team: Text = "",
    stage: Annotated[str, Query(description=f"One of {', '.join(STAGE_FILTERS)}.")] = "",
    health: Annotated[str, Query(description=f"One of {', '.join(HEALTH_FILTERS)}.")] = "",
    page: Page = 1,
) -> Catalogue:
    """Models matching ``q`` (name, description, objective, team, owner), ``team``, ``stage``
    and ``health``, 50 per page, by name; each with its health in plain words and why."""
    return _read(request, q, team, stage, health, page)
