"""Model groups: their section of the catalogue, a page per group (``/ui/groups/{name}``) and
the JSON twins ``GET /api/groups`` and ``GET /api/groups/{name}``.

A group's page says whether the group can answer now, in plain words: each member's alias
is resolved to the version it points at, and the members' schemas are checked with the
registry's own ``check_compatible`` (what a server checks before it serves the group). A
member promoted since the group was defined may no longer fit; the page says which and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from shipyard.config import ProjectConfig
from shipyard.dataset import Schema
from shipyard.errors import InvalidInput, NotFound, ShipyardError
from shipyard.registry import Group, GroupMember, Groups, MemberView, Registry, check_compatible
from shipyard.store import Store
from shipyard.ui._context import ui_context
from shipyard.ui._errors_doc import error_responses
from shipyard.ui._render import render
from shipyard.ui._session import Identity, viewer

router = APIRouter()


class GroupHead(BaseModel):
    """What the catalogue and a group's page both say of a group."""

    name: str
    revision: int
    combine: str
    summary: str
    description: str
    created_by: str
    created_at: datetime


class GroupItem(GroupHead):
    """A group as the catalogue lists it, its members as ``MODEL@ALIAS``."""

    members: list[str]


class GroupMemberStatus(BaseModel):
    """One member: its alias, the version the alias points at now (``None``: none), its
    weight (``weighted`` groups) and, when it keeps the group from answering, why."""

    model: str
    alias: str
    version: int | None
    weight: float | None
    problem: str | None


class GroupPage(GroupHead):
    """Everything a group's page shows. ``can_answer`` is false when a member's alias points
    at no version or the members' schemas do not fit together; ``problem`` says why."""

    weights: list[float] | None
    members: list[GroupMemberStatus]
    can_answer: bool
    problem: str | None


def group_items(store: Store, q: str = "") -> list[GroupItem]:
    """The groups in force, by name; with ``q``, those whose name, description or members
    contain it (case-insensitive)."""
    needle = q.strip().lower()
    items = [
        GroupItem(**_head(g), members=[str(m) for m in g.members]) for g in Groups(store).list()
    ]
    if not needle:
        return items
    return [i for i in items if needle in " ".join([i.name, i.description, *i.members]).lower()]


def group_page(store: Store, name: str, project: ProjectConfig | None = None) -> GroupPage:
    """The page of the group ``name`` (``NotFound`` when there is none)."""
    registry = Registry(store, project)
    group = Groups(store, registry).get(name)
    weights = group.weights or (None,) * len(group.members)
    members = [_member(registry, m, w) for m, w in zip(group.members, weights, strict=True)]
    problem = next((m.problem for m in members if m.problem), None)
    if problem is None:
        problem = _schema_problem(registry, group, members)
    return GroupPage(
        **_head(group),
        weights=list(group.weights) if group.weights is not None else None,
        members=members,
        can_answer=problem is None,
        problem=problem,
    )


def _head(group: Group) -> dict[str, Any]:
    return GroupHead(
        name=group.name,
        revision=group.revision,
        combine=group.combine,
        summary=group.describe(),
        description=group.description,
        created_by=group.created_by,
        created_at=group.created_at,
    ).model_dump()


def _member(registry: Registry, member: GroupMember, weight: float | None) -> GroupMemberStatus:
    try:
        version: int | None = registry.resolve(str(member)).version
        problem = None
    except NotFound as exc:
        version = None
        problem = f"{member} points at no version: {exc.message}"
    return GroupMemberStatus(
        model=member.model, alias=member.alias, version=version, weight=weight, problem=problem
    )


def _schema_problem(
    registry: Registry, group: Group, members: list[GroupMemberStatus]
) -> str | None:
    """Why the members' current versions cannot be combined as ``group.combine`` says
    (``None``: they can), marking the member the check names."""
    views = []
    for m in members:
        assert m.version is not None  # every member resolved (checked by the caller)
        try:
            manifest = registry.read_manifest(m.model, m.version)
        except ShipyardError as exc:
            m.problem = f"The archive of {m.model} v{m.version} cannot be read: {exc.message}"
            return m.problem
        inputs = Schema.model_validate(manifest.input_schema).names()
        views.append(MemberView(m.model, manifest.task, manifest.classes, inputs))
    try:
        check_compatible(group.combine, views)
    except InvalidInput as exc:
        # a chain names the member that cannot follow first; an ensemble names them all
        named = next((m for m in members if exc.message.startswith(f"{m.model} ")), None)
        if named is not None:
            named.problem = exc.message
        return exc.message
    return None


ERRORS = error_responses(401, 403, 404)


@router.get("/ui/groups/{name}", include_in_schema=False)
def group_html(request: Request, name: str, who: Annotated[Identity, Depends(viewer)]) -> Response:
    ctx = ui_context(request)
    view = group_page(ctx.store, name, ctx.project)
    return render(request, "group.html.j2", title=f"Group {view.name}", view=view)


@router.get(
    "/api/groups",
    tags=["groups"],
    summary="The model groups in force (the catalogue's groups section)",
    responses=error_responses(401, 403),
)
def groups_api(request: Request, who: Annotated[Identity, Depends(viewer)]) -> list[GroupItem]:
    """Every model group, by name: its combine rule and members (``MODEL@ALIAS``)."""
    return group_items(ui_context(request).store)


@router.get(
    "/api/groups/{name}",
    tags=["groups"],
    summary="One model group: members, the versions they resolve to, whether it can answer",
    responses=ERRORS,
)
def group_api(request: Request, name: str, who: Annotated[Identity, Depends(viewer)]) -> GroupPage:
    """Everything the group page shows."""
    ctx = ui_context(request)
    return group_page(ctx.store, name, ctx.project)
