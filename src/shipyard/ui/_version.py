"""The version page and its /api twin, plus the version's model card and validation report
as standalone documents.

The card and the report are the self-contained HTML pages ``shipyard card`` and ``shipyard
validate --report`` write (inline styles and plotly). They are served with a CSP of their own
that runs them in a sandbox (an opaque origin: no cookies, no access to this server's pages),
so their inline code never runs with the UI's rights.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from shipyard.errors import NotFound
from shipyard.ui._context import ui_context
from shipyard.ui._errors_doc import error_responses
from shipyard.ui._render import render
from shipyard.ui._session import Identity, viewer
from shipyard.views import VersionView, version_view

router = APIRouter()

#: The CSP of the standalone card and report documents (see the module docstring).
DOCUMENT_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
#: Query values of ``done`` this page turns into a success notice.
DONE = {
    "approval-requested": "Approval requested: the approvers see it in their inbox.",
}
ERRORS = error_responses(400, 401, 403, 404)
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/ui/models/{name}/versions/{version}", include_in_schema=False)
def version_page(
    request: Request,
    name: str,
    version: Version,
    who: Annotated[Identity, Depends(viewer)],
    done: str = "",
) -> Response:
    ctx = ui_context(request)
    view = version_view(ctx.store, name, version, project=ctx.project)
    return render(
        request,
        "version.html.j2",
        title=f"{name} v{version}",
        v=view,
        can_act=who.at_least("scientist"),
        can_approve=who.at_least("approver") and who.name != view.author,
        notice=DONE.get(done, ""),
    )


@router.get(
    "/api/models/{name}/versions/{version}",
    tags=["models"],
    summary="A version: metrics, gates, fairness, explanations, risks, archive, lineage",
    responses=ERRORS,
)
def version_api(
    request: Request,
    name: str,
    version: Version,
    who: Annotated[Identity, Depends(viewer)],
) -> VersionView:
    """Everything the version page shows. ``production`` (0: none) and ``policy`` (the id of
    the traffic policy in force, 0: none) are the ``expected`` values of the actions."""
    ctx = ui_context(request)
    return version_view(ctx.store, name, version, project=ctx.project)


@router.get("/ui/models/{name}/versions/{version}/card", include_in_schema=False)
def card_document(
    request: Request, name: str, version: Version, who: Annotated[Identity, Depends(viewer)]
) -> Response:
    """The model card (``shipyard card``'s HTML page)."""
    from shipyard.checks import build_card, card_html

    ctx = ui_context(request)
    card = build_card(ctx.store, name, version, project=ctx.project)
    return _document(card_html(card))


@router.get("/ui/models/{name}/versions/{version}/validation", include_in_schema=False)
def validation_document(
    request: Request, name: str, version: Version, who: Annotated[Identity, Depends(viewer)]
) -> Response:
    """The newest validation report of the version's archive (``shipyard validate --report``)."""
    from shipyard.checks import render_validation
    from shipyard.registry import Gates, Registry

    ctx = ui_context(request)
    record = Gates(ctx.store).latest(name, version)
    if record is None:
        raise NotFound(
            f"{name} v{version} has no validation yet: shipyard validate {name} {version}."
        )
    policy = Registry(ctx.store, ctx.project).policy(name)
    return _document(render_validation(record, policy))


def _document(html: str) -> HTMLResponse:
    return HTMLResponse(html, headers={"content-security-policy": DOCUMENT_CSP})
