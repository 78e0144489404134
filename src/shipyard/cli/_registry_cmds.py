"""Commands over the registry: models, register, approve, promote, rollback, archive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from shipyard.cli._app import JsonOption, app, client, console, print_json, table
from shipyard.cli._io import read_model_file, read_table
from shipyard.errors import InvalidInput


@app.command("models")
def models_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="Show this model's versions."),
    search: str = typer.Option(None, help="Only models whose name or description has this."),
    tag: str = typer.Option(None, help="Only models with this tag: key or key=value."),
    as_json: bool = JsonOption,
) -> None:
    """List models, or the versions of one model with their stages and aliases."""
    c = client(ctx, notify=False)
    if name is None:
        models = c.registry.list_models(search=search, tag=tag)
        rows: list[dict[str, Any]] = []
        for m in models:
            aliases = c.registry.aliases(m.name)
            rows.append(
                {
                    "name": m.name,
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
            ["name", "production", "aliases", "tags", "created by"],
            [
                (
                    r["name"],
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
    as_json: bool = JsonOption,
) -> None:
    """Register a model file as the next version of a model."""
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
) -> None:
    """Approve a version for production (you must be an approver and not its author)."""
    c = client(ctx)
    c.approve(name, version, reason=reason)
    console.print(f"{c.user} approved [bold]{name} v{version}[/].")


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
    """Point an alias (default: production) at a version. Production needs an approval.

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
            rollout=Rollout(auto, steps, bake),
        )
        return
    change = client(ctx).promote(name, version, to=to, reason=reason)
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
