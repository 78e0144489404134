"""The model page (``/ui/models/{name}``) and ``GET /api/models/{name}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from shipyard.ui._context import ui_context
from shipyard.ui._errors_doc import error_responses
from shipyard.ui._figures import metric_figure
from shipyard.ui._render import render
from shipyard.ui._session import Identity, viewer
from shipyard.views import ModelPage, model_page

router = APIRouter()

#: Actions a scientist (or above) may start from the model page (H3's confirmation pages).
ACTIONS = (
    ("promote", "Promote"),
    ("canary", "Start a canary"),
    ("split", "Split traffic"),
    ("clear", "Clear traffic policy"),
    ("rollback", "Roll back"),
)


#: The notices the actions' redirects ask for (``?done=``); anything else shows nothing, so
#: the page never echoes what a link says.
DONE_NOTICES = {
    "promoted": "Promoted: the alias now points to the version you chose.",
    "canary": "Canary started: part of the traffic now goes to the candidate.",
    "split": "Traffic split in force.",
    "cleared": "Traffic policy cleared: every request goes to production.",
    "rolled-back": "Rolled back: the alias points to the version it pointed to before.",
    "policy-ended": "The traffic policy ended: every request goes to production.",
    "approved": "Approval recorded.",
    "rejected": "Rejection recorded.",
    "acknowledged": "Alert acknowledged.",
}


def _read(request: Request, name: str) -> ModelPage:
    ctx = ui_context(request)
    return model_page(ctx.store, ctx.project, name)


@router.get("/ui/models/{name}", include_in_schema=False)
def model_html(
    request: Request,
    name: str,
    who: Annotated[Identity, Depends(viewer)],
    done: str | None = None,
) -> Response:
    view = _read(request, name)
    plot = view.plot
    title = (
        f"{plot.metric} over the last 30 days, production version overlaid"
        if plot is not None
        else "No monitoring in the last 30 days"
    )
    figure = metric_figure(
        plot,
        view.name,
        title=title,
        steps=view.production_steps,
        since=view.plot_since,
        until=view.plot_until,
    )
    return render(
        request,
        "model.html.j2",
        title=view.name,
        view=view,
        figure=figure,
        figure_title=title,
        actions=ACTIONS if who.at_least("scientist") else (),
        notice=DONE_NOTICES.get(done or "", ""),
    )


@router.get(
    "/api/models/{name}",
    tags=["models"],
    summary="One model: versions, aliases, timeline, traffic, criterion, alerts",
    responses=error_responses(401, 403, 404),
)
def model_api(request: Request, name: str, who: Annotated[Identity, Depends(viewer)]) -> ModelPage:
    """Everything the model page shows."""
    return _read(request, name)
