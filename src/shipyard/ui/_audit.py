"""The audit pages and their /api twins: the event log with the chain's status, tracing a
prediction, and which version served at a time. Every signed-in role may read them.

- ``/ui/audit`` (``?before=SEQ&actor=&action=&subject=``) | ``GET /api/audit``
- ``/ui/trace`` (``?id=``), ``/ui/trace/{prediction_id}`` | ``GET /api/trace/{prediction_id}``
- ``/ui/models/{name}/served?at=ISO`` | ``GET /api/models/{name}/served?at=ISO``

The chain's verification is remembered by a ``ChainCache`` kept on ``app.state.audit_chain``
(made on first use), so a page view does not rehash the whole log.
"""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from shipyard.errors import InvalidInput
from shipyard.names import check_name
from shipyard.ui._context import ui_context
from shipyard.ui._errors_doc import error_responses
from shipyard.ui._render import render
from shipyard.ui._session import Identity, viewer
from shipyard.views import (
    TIME_EXAMPLE,
    AuditPage,
    ChainCache,
    ServedAt,
    Trace,
    audit_page,
    parse_at,
    served_at,
    trace_prediction,
)

router = APIRouter()

Viewer = Annotated[Identity, Depends(viewer)]
Before = Annotated[int | None, Query(ge=1, description="Show events with seq below this.")]
Text = Annotated[str | None, Query(max_length=512)]
At = Annotated[str | None, Query(max_length=64, description=f"A time, e.g. {TIME_EXAMPLE}.")]
_ERRORS = error_responses(400, 401, 404)


def chain_cache(request: Request) -> ChainCache:
    """The app's ``ChainCache`` (one per app, made on first use)."""
    state = request.app.state
    cache: ChainCache | None = getattr(state, "audit_chain", None)
    if cache is None:
        cache = state.audit_chain = ChainCache()
    return cache


def _audit(
    request: Request, before: int | None, actor: str | None, action: str | None, subject: str | None
) -> AuditPage:
    return audit_page(
        ui_context(request).store,
        before=before,
        actor=actor,
        action=action,
        subject=subject,
        cache=chain_cache(request),
    )


@router.get("/ui/audit", include_in_schema=False)
def audit_html(
    request: Request,
    who: Viewer,
    before: Before = None,
    actor: Text = None,
    action: Text = None,
    subject: Text = None,
) -> Response:
    page = _audit(request, before, actor, action, subject)
    details = {
        e.seq: json.dumps(e.details, indent=2, ensure_ascii=False, sort_keys=True)
        for e in page.events
    }
    query = {k: v for k, v in page.filters.model_dump().items() if v}
    return render(
        request, "audit.html.j2", title="Audit log", page=page, details=details, query=query
    )


@router.get("/api/audit", tags=["audit"], summary="The audit log, newest first", responses=_ERRORS)
def audit_json(
    request: Request,
    who: Viewer,
    before: Before = None,
    actor: Text = None,
    action: Text = None,
    subject: Text = None,
) -> AuditPage:
    """100 events per page with ``seq < before``, filtered by exact ``actor`` and ``action``
    and ``subject`` prefix; ``next_before`` pages on; ``chain`` says whether the hash chain
    verifies or names the first broken event."""
    return _audit(request, before, actor, action, subject)


def _trace(request: Request, prediction_id: str) -> Trace:
    ctx = ui_context(request)
    return trace_prediction(ctx.store, ctx.predlog, prediction_id)


@router.get("/ui/trace", include_in_schema=False)
def trace_form(
    request: Request, who: Viewer, id: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    if id and id.strip():
        return RedirectResponse(f"/ui/trace/{quote(id.strip(), safe='')}", status_code=303)
    return render(request, "trace.html.j2", title="Trace a prediction", trace=None)


@router.get("/ui/trace/{prediction_id:path}", include_in_schema=False)
def trace_html(request: Request, who: Viewer, prediction_id: str) -> Response:
    trace = _trace(request, prediction_id)
    return render(request, "trace.html.j2", title=f"Prediction {trace.prediction_id}", trace=trace)


@router.get(
    "/api/trace/{prediction_id:path}",
    tags=["audit"],
    summary="Trace a prediction to its version, run, code, data and label",
    responses=_ERRORS,
)
def trace_json(request: Request, who: Viewer, prediction_id: str) -> Trace:
    """The prediction (input, output, arm, latency, time), the version that answered with its
    archive digest, the run (user, params, git commit and dirty flag), the run's dataset
    fingerprints, the environment, and every label recorded for it."""
    return _trace(request, prediction_id)


def _served(request: Request, name: str, at: str) -> ServedAt:
    return served_at(ui_context(request).store, name, parse_at(at))


@router.get("/ui/models/{name}/served", include_in_schema=False)
def served_html(request: Request, who: Viewer, name: str, at: At = None) -> Response:
    check_name(name)  # the empty form too: never a page for a name no model can have
    served = _served(request, name, at) if at else None
    return render(
        request,
        "served.html.j2",
        title=f"{name}: which version served when",
        name=name,
        at=at or "",
        served=served,
        example=TIME_EXAMPLE,
    )


@router.get(
    "/api/models/{name}/served",
    tags=["audit"],
    summary="Which version served at a time",
    responses=_ERRORS,
)
def served_json(request: Request, who: Viewer, name: str, at: At = None) -> ServedAt:
    """The version the production alias pointed to at ``at`` (ISO 8601, naive is UTC), since
    when, by whom and why, and the traffic policy in force then."""
    if not at:
        raise InvalidInput(f"Give the time to look at: ?at={TIME_EXAMPLE.split(' ')[0]}.")
    return _served(request, name, at)
