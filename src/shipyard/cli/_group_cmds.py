"""``shipyard group create|list|show|delete``: model groups, served as one endpoint.

``shipyard group create retention --member churn@production --member value@production
--combine chain`` defines the group ``retention``; a server answers it at
``/models/retention/predict`` and ``/v2/models/retention/infer`` (see
``shipyard.registry.Groups`` for chain, mean, weighted and vote).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import typer

from shipyard.cli._app import JsonOption, app, client, console, print_json, table

if TYPE_CHECKING:
    from shipyard.registry import Group

group_app = typer.Typer(
    help="Model groups: several models answering one objective under one name.",
    no_args_is_help=True,
)
app.add_typer(group_app, name="group")


def _json(group: Group) -> dict[str, Any]:
    out = asdict(group)
    out["members"] = [str(m) for m in group.members]
    out["created_at"] = group.created_at.isoformat()
    out["summary"] = group.describe()
    return out


@group_app.command("create")
def group_create_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Group name (the endpoint's name)."),
    member: list[str] = typer.Option(
        ..., "--member", help="MODEL@ALIAS, once per member, in a chain's order."
    ),
    combine: str = typer.Option(..., "--combine", help="chain, mean, weighted or vote."),
    weights: str | None = typer.Option(
        None, "--weights", help="With --combine weighted: one per member, e.g. 0.7,0.3."
    ),
    description: str = typer.Option("", "--description", help="What the group answers."),
    replace: bool = typer.Option(False, "--replace", help="Define an existing group again."),
    as_json: bool = JsonOption,
) -> None:
    """Define a model group (checked now: every member resolvable, schemas compatible)."""
    from shipyard.registry import Groups, parse_group_weights

    c = client(ctx)
    parsed = parse_group_weights(weights) if weights is not None else None
    group = Groups(c.store, c.registry).create(
        name,
        member,
        combine,
        actor=c.user,
        weights=parsed,
        description=description,
        replace=replace,
    )
    if as_json:
        print_json(_json(group))
        return
    console.print(f"Group [bold]{group.name}[/] r{group.revision}: {group.describe()}.")


@group_app.command("list")
def group_list_cmd(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """The groups in force."""
    from shipyard.registry import Groups

    c = client(ctx, notify=False)
    groups = Groups(c.store, c.registry).list()
    if as_json:
        print_json([_json(g) for g in groups])
        return
    table(
        "Model groups",
        ["name", "revision", "combine", "members", "by"],
        [
            (g.name, g.revision, g.combine, ", ".join(map(str, g.members)), g.created_by)
            for g in groups
        ],
    )


@group_app.command("show")
def group_show_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Group name."),
    as_json: bool = JsonOption,
) -> None:
    """A group's definition and the version each member's alias points to now."""
    from shipyard.registry import Groups

    c = client(ctx, notify=False)
    group = Groups(c.store, c.registry).get(name)
    versions = {}
    for m in group.members:
        versions[str(m)] = c.registry.aliases(m.model).get(m.alias)
    if as_json:
        print_json({**_json(group), "versions": versions})
        return
    console.print(f"[bold]{group.name}[/] r{group.revision}: {group.describe()}")
    table(
        f"Members of {group.name}",
        ["member", "version now"],
        [(k, "none" if v is None else f"v{v}") for k, v in versions.items()],
    )


@group_app.command("delete")
def group_delete_cmd(
    ctx: typer.Context, name: str = typer.Argument(..., help="Group name.")
) -> None:
    """End a group (its members go on serving under their own names)."""
    from shipyard.registry import Groups

    c = client(ctx)
    group = Groups(c.store, c.registry).delete(name, actor=c.user)
    console.print(f"Group [bold]{group.name}[/] deleted; its members still serve on their own.")
