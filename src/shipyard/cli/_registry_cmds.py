"""Commands over the registry: models, register, approve, promote, rollback, archive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from shipyard.cli._app import JsonOption, app, client, console, print_json, project, table
from shipyard.cli._io import importable, read_model_file, read_table
from shipyard.errors import InvalidInput


class _ModelsGroup(TyperGroup):
    """``shipyard models [NAME]`` lists models or one model's versions; ``shipyard models
    create|set NAME ...`` are subcommands. A first word that is not one is a model's name."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # click.Context
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["show", *args]
        return super().parse_args(ctx, args)


models_app = typer.Typer(
    cls=_ModelsGroup,
    invoke_without_command=True,
    no_args_is_help=False,
    help="List models, or the versions of one model (shipyard models NAME); create or set a "
    "model's business objective and acceptance criterion.",
)
app.add_typer(models_app, name="models")


@models_app.callback()
def models_root(
    ctx: typer.Context,
    search: str = typer.Option(None, help="Only models whose name or description has this."),
    tag: str = typer.Option(None, help="Only models with this tag: key or key=value."),
    as_json: bool = JsonOption,
) -> None:
    """List models, or the versions of one model with their stages and aliases."""
    if ctx.invoked_subcommand is None:
        _models(ctx, None, search, tag, as_json)


@models_app.command("show", hidden=True)
def models_show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Show this model's versions."),
    as_json: bool = JsonOption,
) -> None:
    """The versions of one model with their stages, aliases and approvals."""
    _models(ctx, name, None, None, as_json)


@models_app.command("create")
def models_create(
    ctx: typer.Context,
    name: str,
    objective: str = typer.Option("", "--objective", help="The business objective, in words."),
    accept: str = typer.Option(
        None, "--accept", help='The acceptance criterion, e.g. "roc_auc >= 0.80" (a gate).'
    ),
    team: str = typer.Option("", "--team", help="The team the model belongs to."),
    owner: str = typer.Option(None, "--owner", help="Who answers for the model."),
) -> None:
    """Record a model before its first version, with its objective, acceptance criterion,
    team and owner."""
    c = client(ctx)
    model = c.registry.create_model(
        name, actor=c.user, objective=objective, accept=accept, owner=owner, team=team
    )
    console.print(f"Created model [bold]{model.name}[/].")
    _print_objective(c.registry.policy(name), c.registry.get_model(name))


@models_app.command("set")
def models_set(
    ctx: typer.Context,
    name: str,
    objective: str = typer.Option(None, "--objective", help="The business objective."),
    accept: str = typer.Option(None, "--accept", help='e.g. "roc_auc >= 0.80".'),
    team: str = typer.Option(None, "--team", help='The team ("" clears it).'),
    owner: str = typer.Option(None, "--owner", help='Who answers for it ("" clears it).'),
) -> None:
    """Change a model's recorded objective, acceptance criterion, team or owner (audited)."""
    if objective is None and accept is None and team is None and owner is None:
        raise InvalidInput("Nothing to set: pass --objective, --accept, --team and/or --owner.")
    c = client(ctx)
    if objective is not None or accept is not None:
        c.registry.set_objective(name, actor=c.user, objective=objective, accept=accept)
    if team is not None or owner is not None:
        c.registry.set_details(name, actor=c.user, owner=owner, team=team)
    _print_objective(c.registry.policy(name), c.registry.get_model(name))


def _print_objective(policy: Any, model: Any = None) -> None:
    lines = [
        f"Objective: {policy.objective or '(none recorded)'}",
        f"Acceptance criterion: {policy.accept or '(none)'}",
    ]
    if model is not None:
        lines.append(f"Team: {model.team or '(none)'}")
        lines.append(f"Owner: {model.owner or '(none)'}")
    console.print("\n".join(lines), highlight=False, markup=False)


def _models(
    ctx: typer.Context, name: str | None, search: str | None, tag: str | None, as_json: bool
) -> None:
    c = client(ctx, notify=False)
    if name is None:
        models = c.registry.list_models(search=search, tag=tag)
        rows: list[dict[str, Any]] = []
        for m in models:
            aliases = c.registry.aliases(m.name)
            rows.append(
                {
                    "name": m.name,
                    "team": m.team,
                    "owner": m.owner,
                    "production": aliases.get("production"),
                    "aliases": aliases,
                    "tags": m.tags,
                    "created_by": m.created_by,
                    "created_at": m.created_at,
                }
            )
        if as_json:
            print_json(rows)
            return
        table(
            "Models",
            ["name", "team", "owner", "production", "aliases", "tags", "created by"],
            [
                (
                    r["name"],
                    r["team"],
                    r["owner"] or "",
                    r["production"],
                    ", ".join(f"{k}→v{v}" for k, v in r["aliases"].items()),
                    ", ".join(f"{k}={v}" for k, v in r["tags"].items()),
                    r["created_by"],
                )
                for r in rows
            ],
        )
        return
    infos = c.registry.versions(name)
    from shipyard.registry import Registry

    # the objective and criterion as shipyard.toml declares them (over the recorded ones)
    policy = Registry(c.store, project(ctx)).policy(name)
    rows2: list[dict[str, Any]] = [
        {
            "version": i.version.version,
            "stage": i.stage,
            "aliases": list(i.aliases),
            "author": i.version.author,
            "approved_by": list(i.approvals),
            "created_at": i.version.created_at,
            "flavor": i.version.flavor,
            "metrics": i.version.metrics,
            "digest": i.version.digest,
            "run_id": i.version.run_id,
        }
        for i in infos
    ]
    if as_json:
        print_json(rows2)
        return
    _print_objective(policy)
    table(
        f"Versions of {name}",
        ["version", "stage", "aliases", "author", "approved by", "created", "metrics"],
        [
            (
                r["version"],
                r["stage"],
                ", ".join(r["aliases"]),
                r["author"],
                ", ".join(r["approved_by"]),
                r["created_at"],
                ", ".join(f"{k}={v:.3f}" for k, v in r["metrics"].items()),
            )
            for r in rows2
        ],
    )


@app.command("register")
def register_cmd(
    ctx: typer.Context,
    model_file: Path = typer.Argument(..., help="The fitted model, saved with joblib.dump."),
    name: str = typer.Option(..., "--name", help="Model name in the registry."),
    train: Path = typer.Option(..., "--train", help="Training data (Parquet or CSV)."),
    target: str = typer.Option(None, "--target", help="Label column of --train/--eval."),
    eval_file: Path = typer.Option(None, "--eval", help="Evaluation data for the metrics."),
    description: str = typer.Option("", help="A line about this version."),
    code_path: list[Path] = typer.Option(
        None,
        "--code-path",
        exists=True,
        help="Your module (.py) or package folder the model needs (repeatable); modules it "
        "imports are found by themselves.",
    ),
    load_check: bool = typer.Option(
        True, "--load-check/--no-load-check", help="Load it in a fresh process first."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Register a model file as the next version of a model.

    The model's own code (modules outside installed packages) is stored in its archive, so it
    loads in any folder; a model that needs code is loaded in a fresh Python process first.
    """
    code_paths = list(code_path or [])
    with importable(code_paths):
        model = read_model_file(model_file)
        frame = read_table(train)
        X_train, y_train = _split(frame, target, train)
        X_eval = y_eval = None
        if eval_file is not None:
            if target is None:
                raise InvalidInput("--eval needs --target to know the label column.")
            X_eval, y_eval = _split(read_table(eval_file), target, eval_file)
        mv = client(ctx).register(
            model,
            name=name,
            X_train=X_train,
            y_train=y_train,
            X_eval=X_eval,
            y_eval=y_eval,
            description=description,
            code_paths=code_paths,
            load_check=load_check,
        )
    if as_json:
        print_json({"name": name, "version": mv.version, "digest": mv.digest})
        return
    console.print(f"Registered [bold]{name} v{mv.version}[/] ({mv.digest[:19]}...).")


def _split(frame, target: str | None, path: Path):  # type: ignore[no-untyped-def]
    if target is None:
        return frame, None
    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise InvalidInput(f"'{path}' has no column '{target}'; its columns are {columns}.")
    return frame.drop(columns=[target]), frame[target]


@app.command("approve")
def approve_cmd(
    ctx: typer.Context,
    name: str,
    version: int,
    reason: str = typer.Option(..., "--reason", help="Why this version may go to production."),
    ack_risk: list[int] = typer.Option(
        None, "--ack-risk", metavar="ID", help="Acknowledge this open risk (repeatable)."
    ),
) -> None:
    """Approve a version for production (you must be an approver and not its author).

    The version's open risks are shown first; each open high risk must be acknowledged.
    """
    from shipyard.cli._card_cmds import print_risks
    from shipyard.registry import Risks

    c = client(ctx)
    risks = Risks(c.store).list(name, version=version)
    if risks:
        print_risks(f"Open risks of {name} v{version}", risks)
    c.approve(name, version, reason=reason, acknowledge=ack_risk or ())
    acked = ", ".join(f"#{i}" for i in sorted(set(ack_risk or ())))
    acked = f" (acknowledged risk {acked})" if acked else ""
    console.print(f"{c.user} approved [bold]{name} v{version}[/]{acked}.")


@app.command("promote")
def promote_cmd(
    ctx: typer.Context,
    name: str,
    version: int,
    to: str = typer.Option("production", "--to", help="Alias to point at the version."),
    reason: str = typer.Option("", "--reason"),
    canary: float = typer.Option(
        None, "--canary", metavar="PERCENT", help="Send only PERCENT % of requests to it."
    ),
    shadow: bool = typer.Option(False, "--shadow", help="Mirror requests to it, never answer."),
    sticky: str = typer.Option(None, "--sticky", help="header:<name> or field:<column>."),
    force: bool = typer.Option(
        False, "--force", help="Admins only, with --reason: promote without passing gates."
    ),
    auto: bool = typer.Option(
        False,
        "--auto",
        help="With --canary: step the canary up while 'traffic check' passes after each bake, "
        "promote at 100%, roll back (alerted) when it fails.",
    ),
    steps: str = typer.Option(
        None, "--steps", help="With --auto: percentages, e.g. 10,50,100 (default N,50,100)."
    ),
    bake: str = typer.Option(
        None, "--bake", help="With --auto: how long each step runs before it is judged (30m)."
    ),
) -> None:
    """Point an alias (default: production) at a version. Production needs an approval and
    a passing validation (shipyard validate), unless the model's policy says otherwise.

    With --canary or --shadow, production stays and a traffic policy starts instead; with
    --canary N --auto, a rollout steps the canary up to production by itself.
    """
    if canary is not None or shadow or sticky is not None or auto or steps or bake:
        from shipyard.cli._traffic_cmds import Rollout, start_policy

        start_policy(
            ctx,
            name,
            version,
            to=to,
            canary=canary,
            shadow=shadow,
            sticky=sticky,
            reason=reason,
            force=force,
            rollout=Rollout(auto, steps, bake),
        )
        return
    change = client(ctx).promote(name, version, to=to, reason=reason, force=force)
    before = f" (was v{change.previous_version})" if change.previous_version else ""
    console.print(f"[bold]{name}@{to}[/] → v{version}{before}.")


@app.command("rollback")
def rollback_cmd(
    ctx: typer.Context,
    name: str,
    alias: str = typer.Option("production", "--alias"),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """Re-point production (or --alias) to the version it had before, in one step.

    With a canary or split in force, that is ended instead (production stays).
    """
    c = client(ctx)
    if alias == "production":
        outcome = c.traffic.rollback(name, actor=c.user, reason=reason)
        if outcome.previous is not None:
            console.print(
                f"Ended [bold]{name}[/]'s {outcome.previous.describe()}; production is "
                "unchanged (run rollback again to move it)."
            )
            return
        assert outcome.change is not None
        change = outcome.change
    else:
        change = c.rollback(name, alias=alias, reason=reason)
    console.print(
        f"Rolled back [bold]{name}@{alias}[/]: v{change.previous_version} → v{change.version}."
    )


@app.command("archive")
def archive_cmd(
    ctx: typer.Context, name: str, version: int, reason: str = typer.Option("", "--reason")
) -> None:
    """Retire a version so it can no longer be promoted."""
    c = client(ctx)
    c.registry.archive(name, version, actor=c.user, reason=reason)
    console.print(f"Archived {name} v{version}.")
