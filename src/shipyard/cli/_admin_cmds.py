"""Commands over the store itself: init, db, users, audit, runs."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from shipyard.cli._app import JsonOption, app, client, console, fail, print_json, settings, table
from shipyard.roles import ROLES

users_app = typer.Typer(
    help=f"Users, their roles ({', '.join(ROLES)}), web UI passwords and e-mail addresses.",
    no_args_is_help=True,
)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
db_app = typer.Typer(help="The metadata database's schema.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")


@app.command("init")
def init_cmd(
    ctx: typer.Context,
    ci: str = typer.Option(
        None,
        "--ci",
        help="Instead, write a CI pipeline into this folder: github "
        "(.github/workflows/shipyard.yml) or gitlab (.gitlab-ci.yml).",
    ),
    train: str = typer.Option(
        None, "--train", help="With --ci: the script that trains and registers (python SCRIPT)."
    ),
    model: str = typer.Option(
        None, "--model", help="With --ci: the model to 'shipyard validate' after registering."
    ),
    force: bool = typer.Option(False, "--force", help="With --ci: replace an existing pipeline."),
) -> None:
    """Create the store (you become its admin) or show the existing one; with --ci, write a
    pipeline that registers the model on every change and validates it."""
    if ci is not None:
        from pathlib import Path

        from shipyard.deploy import write_ci

        path = write_ci(Path.cwd(), ci, train=train, model=model, force=force)
        console.print(f"Wrote {escape(str(path.relative_to(Path.cwd())))}.", soft_wrap=True)
        if train is None:
            console.print(
                "[yellow]Note:[/] its register step fails until you name your training script "
                f"(shipyard init --ci {ci} --train train.py --force) or edit it."
            )
        return
    c = client(ctx, notify=False)
    state = "Created" if c.store.created_now else "Using"
    console.print(f"{state} the Shipyard store:")
    console.print(f"  database:  {c.store.db_url}")
    console.print(f"  artifacts: {c.settings.artifacts_url}")
    console.print(f"  you:       {c.user} ({c.users.role(c.user)})")


@db_app.command("upgrade")
def db_upgrade_cmd(
    ctx: typer.Context,
) -> None:
    """Upgrade the database schema to this Shipyard's version (back it up first)."""
    from shipyard.store import create_engine, upgrade_schema

    engine = create_engine(settings(ctx).database_url)
    before, after = upgrade_schema(engine)
    if before == after:
        console.print(f"The schema is already current ({after}).")
    else:
        console.print(f"Upgraded the schema from {before or 'empty'} to {after}.")


@users_app.command("list")
def users_list_cmd(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List users with a role; anyone else acts as a scientist."""
    rows = [
        {
            "name": u.name,
            "role": u.role,
            "email": u.email,
            "password": u.password_hash is not None,
            "created_by": u.created_by,
            "created_at": u.created_at,
        }
        for u in client(ctx, notify=False).users.list_users()
    ]
    if as_json:
        print_json(rows)
        return
    table(
        "Users",
        ["name", "role", "e-mail", "UI password", "added by", "added"],
        [
            (
                r["name"],
                r["role"],
                r["email"],
                "set" if r["password"] else "",
                r["created_by"],
                r["created_at"],
            )
            for r in rows
        ],
    )


@users_app.command("add")
def users_add_cmd(
    ctx: typer.Context,
    name: str,
    role: str = typer.Option(..., "--role", help=f"One of: {', '.join(ROLES)}."),
) -> None:
    """Give a user a role (admins only)."""
    c = client(ctx, notify=False)
    c.users.set_role(name, role, actor=c.user)
    console.print(f"{name} is now {role}.")


@users_app.command("set-password")
def users_set_password_cmd(
    ctx: typer.Context,
    name: str,
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
) -> None:
    """Set a user's web UI password (admins set anyone's, users their own).

    It ends the user's other UI sessions."""
    from shipyard.auth import MIN_PASSWORD, Passwords

    c = client(ctx, notify=False)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(
            f"New password for {name} (at least {MIN_PASSWORD} characters)",
            hide_input=True,
            confirmation_prompt=True,
        )
    Passwords(c.store).set(name, password, actor=c.user)
    console.print(f"Set the web UI password of {escape(name)}; their other sessions have ended.")


@users_app.command("set-email")
def users_set_email_cmd(
    ctx: typer.Context,
    name: str,
    email: str = typer.Argument(..., help='The address digests go to ("" removes it).'),
) -> None:
    """Set a user's e-mail address (admins set anyone's, users their own)."""
    c = client(ctx, notify=False)
    c.users.set_email(name, email, actor=c.user)
    who = escape(name)
    console.print(
        f"{who}'s e-mail address is now {escape(email)}."
        if email
        else f"Removed {who}'s e-mail address."
    )


@users_app.command("remove")
def users_remove_cmd(ctx: typer.Context, name: str) -> None:
    """Remove a user's role (admins only)."""
    c = client(ctx, notify=False)
    c.users.remove(name, actor=c.user)
    console.print(f"Removed {name}.")


@audit_app.command("log")
def audit_log_cmd(
    ctx: typer.Context,
    subject: str = typer.Option(
        None, help="Only events whose subject starts with this, e.g. model:churn"
    ),
    action: str = typer.Option(None, help="Only this action, e.g. version.promoted"),
    limit: int = typer.Option(50, min=1, max=100_000),
    as_json: bool = JsonOption,
) -> None:
    """List audit events, newest first."""
    from shipyard.audit import list_events

    with client(ctx, notify=False).store.read() as session:
        events = list_events(session, subject=subject, action=action, limit=limit)
        rows = [
            {
                "seq": e.seq,
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "reason": e.reason,
                "details": e.details,
                "hash": e.hash,
            }
            for e in events
        ]
    if as_json:
        print_json(rows)
        return
    table(
        "Audit log",
        ["#", "at", "who", "action", "subject", "why"],
        [(r["seq"], r["at"], r["actor"], r["action"], r["subject"], r["reason"]) for r in rows],
    )


@audit_app.command("verify")
def audit_verify_cmd(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Recompute the hash chain; exit 1 and name the first broken event if tampered."""
    from shipyard.audit import verify

    with client(ctx, notify=False).store.read() as session:
        result = verify(session)
    if as_json:
        print_json(
            {
                "ok": result.ok,
                "checked": result.checked,
                "broken_seq": result.broken_seq,
                "problem": result.problem,
            }
        )
        if not result.ok:
            raise typer.Exit(1)
        return
    if result.ok:
        console.print(f"[green]The audit log verifies[/]: {result.checked} events, chain intact.")
    else:
        fail(
            f"The audit log does not verify: {result.problem} (first broken event: "
            f"#{result.broken_seq}; {result.checked} events before it verify)."
        )


@app.command("runs")
def runs_cmd(
    ctx: typer.Context,
    run_id: str = typer.Argument(None, help="Show this run in full."),
    model: str = typer.Option(None, help="Only runs of this model."),
    limit: int = typer.Option(20, min=1, max=10_000),
    as_json: bool = JsonOption,
) -> None:
    """List runs, or show one with its params, metrics, datasets and environment."""
    tracker = client(ctx, notify=False).tracker
    if run_id is None:
        runs = tracker.list_runs(model=model, limit=limit)
        rows = [
            {
                "id": r.id,
                "model": r.model_name,
                "status": r.status,
                "user": r.user,
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "commit": (r.git.get("commit") or "")[:10],
                "dirty": r.git.get("dirty"),
                "error": r.error,
            }
            for r in runs
        ]
        if as_json:
            print_json(rows)
            return
        table(
            "Runs",
            ["id", "model", "status", "user", "started", "commit", "error"],
            [
                (
                    r["id"][:12],
                    r["model"],
                    r["status"],
                    r["user"],
                    r["started_at"],
                    r["commit"] + ("*" if r["dirty"] else ""),
                    r["error"],
                )
                for r in rows
            ],
        )
        return
    run = tracker.get(run_id)
    detail = {
        "id": run.id,
        "model": run.model_name,
        "status": run.status,
        "user": run.user,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "error": run.error,
        "params": run.params,
        "metrics": tracker.metrics(run.id),
        "git": run.git,
        "environment": run.environment,
        "datasets": [
            {"name": d.name, "content_hash": d.content_hash, "n_rows": d.n_rows}
            for d in tracker.datasets(run.id)
        ],
        "artifacts": [
            {"path": a.path, "sha256": a.sha256, "size": a.size} for a in tracker.artifacts(run.id)
        ],
    }
    if as_json:
        print_json(detail)
        return
    console.print_json(data=detail, default=str)
