"""The model page (``/ui/models/{name}``) and ``GET /api/models/{name}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from shipyard.registry import PRODUCTION
from shipyard.ui._context import ui_context
from shipyard.ui._errors_doc import error_responses
from shipyard.ui._figures import metric_figure
from shipyard.ui._render import render
from shipyard.ui._session import Identity, viewer
from shipyard.views import ModelPage, model_page

router = APIRouter()

#: Query values of ``done`` (where an action sends the browser) shown as a success notice.
DONE = {
    "approved": "Approved: the version may now be promoted.",
    "rejected": "Rejected: the author sees your reason on the version page.",
    "promoted": "Promoted.",
    "canary": "Canary started: the traffic policy below is in force.",
    "split": "Traffic split: the policy below is in force.",
    "cleared": "Traffic policy ended: every request goes to the production version.",
    "policy-ended": "Rolled back: the canary or split ended; production is unchanged.",
    "rolled-back": "Rolled back: production points at the previous version.",
    "acknowledged": "Alert acknowledged.",
}


def actions_of(view: ModelPage) -> list[tuple[str, str]]:
    """The model page's actions for a scientist: (link under ``actions/``, label). Promote
    and canary name the newest live version that is not in production (their confirmation
    pages need one); a canary needs a production version; clearing needs a policy."""
    production = next((a.version for a in view.aliases if a.alias == PRODUCTION), None)
    candidate = next(
        (v.version for v in view.versions if v.version != production and v.archived_at is None),
        None,
    )
    actions = []
    if candidate is not None:
        actions.append((f"promote?version={candidate}", f"Promote v{candidate}"))
        if production is not None:
            actions.append(
                (f"canary?version={candidate}&percent=10", f"Start a canary of v{candidate} (10%)")
            )
    actions.append(("split", "Split traffic"))
    if view.traffic is not None:
        actions.append(("clear", "Clear traffic policy"))
    actions.append(("rollback", "Roll back"))
    return actions


def _read(request: Request, name: str) -> ModelPage:
    ctx = ui_context(request)
    return model_page(ctx.store, ctx.project, name)


@router.get("/ui/models/{name}", include_in_schema=False)
def model_html(
    request: Request, name: str, who: Annotated[Identity, Depends(viewer)], done: str = ""
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
        actions=actions_of(view) if who.at_least("scientist") else [],
        notice=DONE.get(done, ""),
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
