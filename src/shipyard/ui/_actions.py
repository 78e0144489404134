"""Actions on a model's traffic: promote, canary, split, clear, rollback, and acknowledging
an alert. Each has a confirmation page (GET) naming the exact model, version and alias,
whose form POSTs the action, and a JSON twin under /api/.

Every action calls the registry, ``Traffic`` or ``Alerts`` exactly as the CLI does (same
checks, same audit events) as the logged-in user, needs the scientist role, and carries
``expected``: what the page showed (the alias's version, 0 for none; the id of the traffic
policy in force, 0 for none). The registry compares it inside the write transaction, so a
stale page or a double submit is refused (409) and never applied twice. After a success
the browser goes to the model page with ``?done=`` ``promoted``, ``canary``, ``split``,
``cleared``, ``rolled-back``, ``policy-ended`` or ``acknowledged``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from shipyard.alerting import Alerts
from shipyard.errors import InvalidInput, NotFound
from shipyard.registry import (
    PRODUCTION,
    Registry,
    Traffic,
    check_alias,
    parse_weights,
)
from shipyard.store.tables import AlertRecord
from shipyard.ui._context import UiContext, ui_context
from shipyard.ui._errors_doc import error_responses
from shipyard.ui._render import render
from shipyard.ui._session import Identity, scientist

router = APIRouter()


ACTION_ERRORS = error_responses(400, 401, 403, 404, 409)
Reason = Annotated[str, Form(max_length=4000)]
Expected = Annotated[str, Form(max_length=32)]


class ActionDone(BaseModel):
    """What an action did, in one sentence, and the state it left (``policy``: the id of the
    traffic policy in force now, 0 for none)."""

    action: str
    model: str
    message: str
    version: int | None = None
    alias: str | None = None
    policy: int = 0


class PromoteBody(BaseModel):
    version: int = Field(ge=1)
    alias: str = PRODUCTION
    expected: int = Field(ge=0, description="The alias's version you saw; 0 for none.")
    reason: str = Field(default="", max_length=4000)


class CanaryBody(BaseModel):
    version: int = Field(ge=1)
    percent: float = Field(gt=0, lt=100)
    expected: int = Field(ge=0, description="The id of the policy in force you saw; 0: none.")
    sticky: str | None = Field(default=None, max_length=200)
    reason: str = Field(default="", max_length=4000)


class SplitBody(BaseModel):
    weights: dict[str, float] = Field(description='e.g. {"production": 50, "4": 50}')
    expected: int = Field(ge=0, description="The id of the policy in force you saw; 0: none.")
    sticky: str | None = Field(default=None, max_length=200)
    reason: str = Field(default="", max_length=4000)


class ClearBody(BaseModel):
    expected: int = Field(ge=0, description="The id of the policy in force you saw.")
    reason: str = Field(default="", max_length=4000)


class RollbackBody(BaseModel):
    alias: str = PRODUCTION
    expected: int = Field(ge=0, description="The alias's version you saw; 0 for none.")
    expected_policy: int | None = Field(
        default=None, ge=0, description="For production: the id of the policy in force you saw."
    )
    reason: str = Field(default="", max_length=4000)


def done_redirect(name: str, done: str) -> RedirectResponse:
    """303 to the model page with the success notice ``done``."""
    return RedirectResponse(f"/ui/models/{name}?done={done}", status_code=303)


def parse_expected(value: str, what: str) -> int:
    """A form's ``expected``: a number, or ``none`` (0)."""
    value = value.strip().lower()
    if value in ("none", "0"):
        return 0
    if value.isascii() and value.isdigit():
        return int(value)
    raise InvalidInput(f"The form's expected {what} '{value[:20]}' is not a number; reload it.")


def _state(ctx: UiContext, name: str, alias: str = PRODUCTION) -> dict[str, Any]:
    """What a confirmation page shows: the alias's version now and the policy in force."""
    registry = Registry(ctx.store, ctx.project)
    policy = Traffic(ctx.store, ctx.project).current(name)
    return {
        "name": name,
        "alias": alias,
        "current": registry.aliases(name).get(alias, 0),
        "policy": policy,
        "policy_id": policy.id if policy is not None else 0,
    }


def _confirm(request: Request, kind: str, title: str, **context: Any) -> Response:
    return render(request, "confirm.html.j2", title=title, kind=kind, **context)


# -- promote ------------------------------------------------------------------------------
@router.get("/ui/models/{name}/actions/promote", include_in_schema=False)
def promote_form(
    request: Request,
    name: str,
    who: Annotated[Identity, Depends(scientist)],
    version: Annotated[int, Query(ge=1)],
    alias: str = PRODUCTION,
) -> Response:
    ctx = ui_context(request)
    check_alias(alias)
    Registry(ctx.store, ctx.project).get_version(name, version)
    state = _state(ctx, name, alias)
    return _confirm(
        request, "promote", f"Promote {name} v{version} to {alias}", version=version, **state
    )


@router.post("/ui/models/{name}/actions/promote", include_in_schema=False)
def promote_post(
    request: Request,
    name: str,
    who: Annotated[Identity, Depends(scientist)],
    version: Annotated[int, Form(ge=1)],
    expected: Expected,
    alias: Annotated[str, Form(max_length=64)] = PRODUCTION,
    reason: Reason = "",
) -> Response:
    body = PromoteBody(
        version=version,
        alias=alias,
        expected=parse_expected(expected, "version"),
        reason=reason,
    )
    _promote(ui_context(request), name, who, body)
    return done_redirect(name, "promoted")


@router.post(
    "/api/models/{name}/promote",
    tags=["actions"],
    summary="Point an alias (default production) at a version",
    responses=ACTION_ERRORS,
)
def promote_api(
    request: Request, name: str, body: PromoteBody, who: Annotated[Identity, Depends(scientist)]
) -> ActionDone:
    """Production needs an approval (four eyes) and a passing validation; ``expected`` must
    be the alias's version now (0: none) or nothing changes (409)."""
    return _promote(ui_context(request), name, who, body)


def _promote(ctx: UiContext, name: str, who: Identity, body: PromoteBody) -> ActionDone:
    change = Registry(ctx.store, ctx.project).promote(
        name,
        body.version,
        actor=who.name,
        to=body.alias,
        reason=body.reason,
        expected_version=body.expected,
    )
    was = f" (was v{change.previous_version})" if change.previous_version else ""
    return _done(ctx, "promoted", name, f"{name}@{body.alias} is v{body.version}{was}.", body)


# -- canary -------------------------------------------------------------------------------
@router.get("/ui/models/{name}/actions/canary", include_in_schema=False)
def canary_form(
    request: Request,
    name: str,
    who: Annotated[Identity, Depends(scientist)],
    version: Annotated[int, Query(ge=1)],
    percent: Annotated[float, Query(gt=0, lt=100)] = 10,
) -> Response:
    ctx = ui_context(request)
    Registry(ctx.store, ctx.project).get_version(name, version)
    state = _state(ctx, name)
    return _confirm(
        request,
        "canary",
        f"Start a canary of {name} v{version}",
        version=version,
        percent=percent,
        **state,
    )


@router.post("/ui/models/{name}/actions/canary", include_in_schema=False)
def canary_post(
    request: Request,
    name: str,
    who: Annotated[Identity, Depends(scientist)],
    version: Annotated[int, Form(ge=1)],
    percent: Annotated[float, Form(gt=0, lt=100)],
    expected: Expected,
    reason: Reason = "",
) -> Response:
    body = CanaryBody(
        version=version,
        percent=percent,
        expected=parse_expected(expected, "policy"),
        reason=reason,
    )
    _canary(ui_context(request), name, who, body)
    return done_redirect(name, "canary")


@router.post(
    "/api/models/{name}/canary",
    tags=["actions"],
    summary="Send a share of the traffic to a version; production answers the rest",
    responses=ACTION_ERRORS,
)
def canary_api(
    request: Request, name: str, body: CanaryBody, who: Annotated[Identity, Depends(scientist)]
) -> ActionDone:
    """The version needs an approval and a passing validation; ``expected`` must be the id of
    the policy in force (0: none) or nothing changes (409)."""
    return _canary(ui_context(request), name, who, body)


def _canary(ctx: UiContext, name: str, who: Identity, body: CanaryBody) -> ActionDone:
    policy = Traffic(ctx.store, ctx.project).canary(
        name,
        body.version,
        body.percent,
        actor=who.name,
        sticky=body.sticky,
        reason=body.reason,
        expected_policy=body.expected,
    )
    return _done(ctx, "canary", name, f"{name}: {policy.describe()}.", body)


# -- split --------------------------------------------------------------------------------
@router.get("/ui/models/{name}/actions/split", include_in_schema=False)
def split_form(
    request: Request,
    name: str,
    who: Annotated[Identity, Depends(scientist)],
    weights: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    ctx = ui_context(request)
    state = _state(ctx, name)
    return _confirm(request, "split", f"Split {name}'s traffic", weights=weights, **state)


@router.post("/ui/models/{name}/actions/split", include_in_schema=False)
def split_post(
    request: Request,
    name: str,
    who: Annotated[Identity, Depends(scientist)],
    weights: Annotated[str, Form(max_length=200)],
    expected: Expected,
    reason: Reason = "",
) -> Response:
    parsed = parse_weights(weights.replace(",", " ").split())
    body = SplitBody(
        weights={("production" if v is None else str(v)): w for v, w in parsed.items()},
        expected=parse_expected(expected, "policy"),
        reason=reason,
    )
    _split(ui_context(request), name, who, body)
    return done_redirect(name, "split")


@router.post(
    "/api/models/{name}/split",
    tags=["actions"],
    summary="A/B(/n) test: each version answers its percentage of the requests",
    responses=ACTION_ERRORS,
)
def split_api(
    request: Request, name: str, body: SplitBody, who: Annotated[Identity, Depends(scientist)]
) -> ActionDone:
    """``weights`` map versions (or ``production``) to percentages summing to 100."""
    return _split(ui_context(request), name, who, body)


def _split(ctx: UiContext, name: str, who: Identity, body: SplitBody) -> ActionDone:
    weights = parse_weights([f"{k}={w}" for k, w in body.weights.items()])
    policy = Traffic(ctx.store, ctx.project).split(
        name,
        weights,
        actor=who.name,
        sticky=body.sticky,
        reason=body.reason,
        expected_policy=body.expected,
    )
    return _done(ctx, "split", name, f"{name}: {policy.describe()}.", None)


# -- clear --------------------------------------------------------------------------------
@router.get("/ui/models/{name}/actions/clear", include_in_schema=False)
def clear_form(
    request: Request, name: str, who: Annotated[Identity, Depends(scientist)]
) -> Response:
    ctx = ui_context(request)
    return _confirm(request, "clear", f"End {name}'s traffic policy", **_state(ctx, name))


@router.post("/ui/models/{name}/actions/clear", include_in_schema=False)
def clear_post(
    request: Request,
    name: str,
    who: Annotated[Identity, Depends(scientist)],
    expected: Expected,
    reason: Reason = "",
) -> Response:
    body = ClearBody(expected=parse_expected(expected, "policy"), reason=reason)
    _clear(ui_context(request), name, who, body)
    return done_redirect(name, "cleared")


@router.post(
    "/api/models/{name}/clear",
    tags=["actions"],
    summary="End the traffic policy: every request goes to the served alias",
    responses=ACTION_ERRORS,
)
def clear_api(
    request: Request, name: str, body: ClearBody, who: Annotated[Identity, Depends(scientist)]
) -> ActionDone:
    return _clear(ui_context(request), name, who, body)


def _clear(ctx: UiContext, name: str, who: Identity, body: ClearBody) -> ActionDone:
    Traffic(ctx.store, ctx.project).clear(
        name, actor=who.name, reason=body.reason, expected_policy=body.expected
    )
    return _done(ctx, "cleared", name, f"{name}'s traffic policy ended.", None)


# -- rollback -----------------------------------------------------------------------------
@router.get("/ui/models/{name}/actions/rollback", include_in_schema=False)
def rollback_form(
    request: Request,
    name: str,
    who: Annotated[Identity, Depends(scientist)],
    alias: str = PRODUCTION,
) -> Response:
    ctx = ui_context(request)
    check_alias(alias)
    state = _state(ctx, name, alias)
    target = Registry(ctx.store, ctx.project).rollback_target(name, alias)
    ends = alias == PRODUCTION and state["policy"] is not None and state["policy"].answering
    return _confirm(
        request, "rollback", f"Roll back {name}@{alias}", target=target, ends=ends, **state
    )


@router.post("/ui/models/{name}/actions/rollback", include_in_schema=False)
def rollback_post(
    request: Request,
    name: str,
    who: Annotated[Identity, Depends(scientist)],
    expected: Expected,
    expected_policy: Expected = "",
    alias: Annotated[str, Form(max_length=64)] = PRODUCTION,
    reason: Reason = "",
) -> Response:
    body = RollbackBody(
        alias=alias,
        expected=parse_expected(expected, "version"),
        expected_policy=parse_expected(expected_policy, "policy") if expected_policy else None,
        reason=reason,
    )
    done = _rollback(ui_context(request), name, who, body)
    return done_redirect(name, done.action)


@router.post(
    "/api/models/{name}/rollback",
    tags=["actions"],
    summary="Roll an alias back; for production, end a canary or split first",
    responses=ACTION_ERRORS,
)
def rollback_api(
    request: Request, name: str, body: RollbackBody, who: Annotated[Identity, Depends(scientist)]
) -> ActionDone:
    """As ``shipyard rollback``: for production, a canary or split in force is ended
    (``policy-ended``); else the alias goes back a version (``rolled-back``). Production
    needs ``expected_policy`` too."""
    return _rollback(ui_context(request), name, who, body)


def _rollback(ctx: UiContext, name: str, who: Identity, body: RollbackBody) -> ActionDone:
    check_alias(body.alias)
    if body.alias != PRODUCTION:
        change = Registry(ctx.store, ctx.project).rollback(
            name,
            actor=who.name,
            alias=body.alias,
            reason=body.reason,
            expected_version=body.expected,
        )
        text = f"{name}@{body.alias} is back to v{change.version} (was v{change.previous_version})."
        return _done(ctx, "rolled-back", name, text, None, alias=body.alias)
    if body.expected_policy is None:
        raise InvalidInput(
            "Rolling back production needs expected_policy: the id of the traffic policy in "
            "force you saw (0 for none)."
        )
    outcome = Traffic(ctx.store, ctx.project).rollback(
        name,
        actor=who.name,
        reason=body.reason,
        expected_policy=body.expected_policy,
        expected_version=body.expected,
    )
    if outcome.previous is not None:
        text = f"Ended {name}'s {outcome.previous.describe()}; production is unchanged."
        return _done(ctx, "policy-ended", name, text, None, alias=PRODUCTION)
    assert outcome.change is not None
    change = outcome.change
    text = f"{name}@production is back to v{change.version} (was v{change.previous_version})."
    return _done(ctx, "rolled-back", name, text, None, alias=PRODUCTION)


def _done(
    ctx: UiContext,
    action: str,
    name: str,
    message: str,
    body: PromoteBody | CanaryBody | None,
    *,
    alias: str | None = None,
) -> ActionDone:
    policy = Traffic(ctx.store, ctx.project).current(name)
    return ActionDone(
        action=action,
        model=name,
        message=message,
        version=body.version if body is not None else None,
        alias=body.alias if isinstance(body, PromoteBody) else alias,
        policy=policy.id if policy is not None else 0,
    )


# -- acknowledge an alert -----------------------------------------------------------------
class AlertOut(BaseModel):
    """An alert and who acknowledged it."""

    id: str
    rule: str
    severity: str
    model: str
    version: int
    message: str
    acknowledged_by: str | None


def _alert(ctx: UiContext, alert_id: str) -> AlertRecord:
    with ctx.store.read() as session:
        row = session.get(AlertRecord, alert_id)
    if row is None:
        raise NotFound(f"There is no alert '{alert_id[:40]}'. 'shipyard alerts list' shows them.")
    return row


@router.get("/ui/alerts/{alert_id}/ack", include_in_schema=False)
def ack_form(
    request: Request, alert_id: str, who: Annotated[Identity, Depends(scientist)]
) -> Response:
    alert = _alert(ui_context(request), alert_id)
    return _confirm(
        request, "ack", f"Acknowledge alert {alert.id}", alert=alert, name=alert.model_name
    )


@router.post("/ui/alerts/{alert_id}/ack", include_in_schema=False)
def ack_post(
    request: Request, alert_id: str, who: Annotated[Identity, Depends(scientist)]
) -> Response:
    record = _ack(ui_context(request), alert_id, who)
    return done_redirect(record.model, "acknowledged")


@router.post(
    "/api/alerts/{alert_id}/ack",
    tags=["actions"],
    summary="Acknowledge an alert",
    responses=ACTION_ERRORS,
)
def ack_api(
    request: Request, alert_id: str, who: Annotated[Identity, Depends(scientist)]
) -> AlertOut:
    """An alert acknowledged already is refused (409): a double submit changes nothing."""
    return _ack(ui_context(request), alert_id, who)


def _ack(ctx: UiContext, alert_id: str, who: Identity) -> AlertOut:
    row = Alerts(ctx.store).acknowledge(alert_id, actor=who.name)
    return AlertOut(
        id=row.id,
        rule=row.rule,
        severity=row.severity,
        model=row.model_name,
        version=row.version,
        message=row.message,
        acknowledged_by=row.acknowledged_by,
    )
