"""The approvals inbox, and approving, rejecting and requesting a review of a version: each
a confirmation page (GET) whose form POSTs the action, and a JSON twin under /api/.

Approving and rejecting need the approver role on the route; the registry still enforces
four eyes (the author never approves their own version) and the required reason. After a
success the browser goes back to the model page with ``?done=approved`` (``rejected``,
``approval-requested``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from shipyard.registry import Registry, Risks
from shipyard.ui._actions import ACTION_ERRORS, done_redirect
from shipyard.ui._context import ui_context
from shipyard.ui._render import render
from shipyard.ui._session import Identity, approver, scientist, viewer
from shipyard.ui._version import Version
from shipyard.views import (
    ApprovalsView,
    RequestView,
    approvals_view,
    request_view,
    version_view,
)

router = APIRouter()

Text = Annotated[str, Form(max_length=4000)]


class ApproveBody(BaseModel):
    """Why the version may go to production; the ids of the open high risks accepted."""

    reason: str = Field(max_length=4000)
    acknowledge: list[int] = Field(default_factory=list)


class RejectBody(BaseModel):
    reason: str = Field(max_length=4000)


class RequestBody(BaseModel):
    comment: str = Field(default="", max_length=4000)


class ApprovalOut(BaseModel):
    """A recorded approval."""

    model: str
    version: int
    approver: str
    reason: str
    created_at: datetime


@router.get("/ui/approvals", include_in_schema=False)
def inbox_page(request: Request, who: Annotated[Identity, Depends(viewer)]) -> Response:
    ctx = ui_context(request)
    return render(
        request,
        "approvals.html.j2",
        title="Approvals",
        inbox=approvals_view(ctx.store),
        can_approve=who.at_least("approver"),
        me=who.name,
    )


@router.get(
    "/api/approvals",
    tags=["approvals"],
    summary="Versions waiting for an approver, with their evidence",
    responses={401: {"description": "Not logged in"}},
)
def inbox_api(request: Request, who: Annotated[Identity, Depends(viewer)]) -> ApprovalsView:
    """Open approval requests (with the requester's comment), then unreviewed candidates
    (unarchived, newer than production, nobody approved, rejected or asked): each with its
    gate results, metrics beside production's and open risks."""
    return approvals_view(ui_context(request).store)


# -- approve ------------------------------------------------------------------------------
@router.get("/ui/models/{name}/versions/{version}/approve", include_in_schema=False)
def approve_form(
    request: Request, name: str, version: Version, who: Annotated[Identity, Depends(approver)]
) -> Response:
    return _decision_form(request, name, version, who, "approve")


@router.post("/ui/models/{name}/versions/{version}/approve", include_in_schema=False)
def approve_post(
    request: Request,
    name: str,
    version: Version,
    who: Annotated[Identity, Depends(approver)],
    reason: Text = "",
    acknowledge: Annotated[list[int], Form()] = [],  # noqa: B006 - FastAPI copies defaults
) -> Response:
    _approve(request, name, version, who, ApproveBody(reason=reason, acknowledge=acknowledge))
    return done_redirect(name, "approved")


@router.post(
    "/api/models/{name}/versions/{version}/approve",
    tags=["approvals"],
    summary="Approve a version (approver, not its author)",
    responses=ACTION_ERRORS,
)
def approve_api(
    request: Request,
    name: str,
    version: Version,
    body: ApproveBody,
    who: Annotated[Identity, Depends(approver)],
) -> ApprovalOut:
    """Four eyes: the author is refused (403); an empty reason is refused (400); each open
    high risk must be in ``acknowledge``; approving twice is refused (409)."""
    return _approve(request, name, version, who, body)


def _approve(
    request: Request, name: str, version: int, who: Identity, body: ApproveBody
) -> ApprovalOut:
    ctx = ui_context(request)
    approval = Registry(ctx.store, ctx.project).approve(
        name, version, actor=who.name, reason=body.reason, acknowledge=body.acknowledge
    )
    return ApprovalOut(
        model=approval.model_name,
        version=approval.version,
        approver=approval.approver,
        reason=approval.reason,
        created_at=approval.created_at,
    )


# -- reject -------------------------------------------------------------------------------
@router.get("/ui/models/{name}/versions/{version}/reject", include_in_schema=False)
def reject_form(
    request: Request, name: str, version: Version, who: Annotated[Identity, Depends(approver)]
) -> Response:
    return _decision_form(request, name, version, who, "reject")


@router.post("/ui/models/{name}/versions/{version}/reject", include_in_schema=False)
def reject_post(
    request: Request,
    name: str,
    version: Version,
    who: Annotated[Identity, Depends(approver)],
    reason: Text = "",
) -> Response:
    ctx = ui_context(request)
    Registry(ctx.store, ctx.project).reject(name, version, actor=who.name, reason=reason)
    return done_redirect(name, "rejected")


@router.post(
    "/api/models/{name}/versions/{version}/reject",
    tags=["approvals"],
    summary="Reject a version, with a reason (approver, not its author)",
    responses=ACTION_ERRORS,
)
def reject_api(
    request: Request,
    name: str,
    version: Version,
    body: RejectBody,
    who: Annotated[Identity, Depends(approver)],
) -> RequestView:
    """Closes the version's open request as rejected (or records the rejection)."""
    ctx = ui_context(request)
    registry = Registry(ctx.store, ctx.project)
    return request_view(registry.reject(name, version, actor=who.name, reason=body.reason))


# -- request approval ---------------------------------------------------------------------
@router.get("/ui/models/{name}/versions/{version}/request-approval", include_in_schema=False)
def request_form(
    request: Request, name: str, version: Version, who: Annotated[Identity, Depends(scientist)]
) -> Response:
    return _decision_form(request, name, version, who, "request-approval")


@router.post("/ui/models/{name}/versions/{version}/request-approval", include_in_schema=False)
def request_post(
    request: Request,
    name: str,
    version: Version,
    who: Annotated[Identity, Depends(scientist)],
    comment: Text = "",
) -> Response:
    ctx = ui_context(request)
    Registry(ctx.store, ctx.project).request_approval(
        name, version, actor=who.name, comment=comment
    )
    return RedirectResponse(
        f"/ui/models/{name}/versions/{version}?done=approval-requested", status_code=303
    )


@router.post(
    "/api/models/{name}/versions/{version}/request-approval",
    tags=["approvals"],
    summary="Ask the approvers to review a version, with a comment",
    responses=ACTION_ERRORS,
)
def request_api(
    request: Request,
    name: str,
    version: Version,
    body: RequestBody,
    who: Annotated[Identity, Depends(scientist)],
) -> RequestView:
    """Refused (409) for an archived or approved version and while a request is open."""
    ctx = ui_context(request)
    registry = Registry(ctx.store, ctx.project)
    return request_view(
        registry.request_approval(name, version, actor=who.name, comment=body.comment)
    )


def _decision_form(request: Request, name: str, version: int, who: Identity, kind: str) -> Response:
    """The confirmation page of approving, rejecting or requesting a review of a version,
    with its evidence (gates, risks, the open request's comment)."""
    ctx = ui_context(request)
    view = version_view(ctx.store, name, version, project=ctx.project)
    risks = Risks(ctx.store).list(name, version=version)
    return render(
        request,
        "decide.html.j2",
        title={
            "approve": f"Approve {name} v{version}",
            "reject": f"Reject {name} v{version}",
            "request-approval": f"Request approval of {name} v{version}",
        }[kind],
        kind=kind,
        v=view,
        open_risks=risks,
        own=view.author == who.name,
    )
