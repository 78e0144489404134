"""``shipyard serve`` (``--ui``: with the web UI beside it) and ``shipyard tokens``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, get_args

import typer
from rich.markup import escape

from shipyard.cli._app import JsonOption, app, client, console, fail, print_json, project, table
from shipyard.cli._app import settings as cli_settings
from shipyard.cli._predictions_cmds import log_root
from shipyard.cli._ui_cmd import ui_option, ui_settings
from shipyard.roles import TOKEN_ROLES
from shipyard.settings import Runtime, ServeSettings

tokens_app = typer.Typer(
    help="Bearer API tokens for the model server and the web UI's /api.", no_args_is_help=True
)
app.add_typer(tokens_app, name="tokens")


def _serve_option(field: str, *flags: str, default: Any = None, **kw: Any) -> Any:
    """The option setting ``ServeSettings.<field>``: its default and help are the field's."""
    info = ServeSettings.model_fields[field]
    value = info.default if default is None else default
    return typer.Option(value, *flags, help=info.description, **kw)


def _check_port_free(host: str, port: int) -> None:
    """Refuse (exit 2) a --grpc-port something listens on, before any model loads."""
    import socket

    from shipyard.errors import InvalidInput

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise InvalidInput(
            f"--grpc-port {port}: cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "pick a free port."
        ) from None


@app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    models: str = _serve_option("models"),
    alias: str = _serve_option("alias"),
    workers: int = typer.Option(1, min=1, help="Worker processes (each loads every model)."),
    runtime: str = _serve_option("runtime"),
    no_auth: bool = _serve_option(
        "auth", "--no-auth", default=not ServeSettings.model_fields["auth"].default
    ),
    log_dir: Path = typer.Option(
        None, help="Prediction log folder (default: predictions/ in SHIPYARD_HOME)."
    ),
    no_log: bool = typer.Option(False, "--no-log", help="Keep no prediction log."),
    compactor: str = _serve_option("compactor"),
    max_body_bytes: int = _serve_option("max_body_bytes"),
    max_batch_rows: int = _serve_option("max_batch_rows"),
    grpc_port: int | None = _serve_option("grpc_port", min=1, max=65535),
    snapshot_every: int = _serve_option("snapshot_every", "--snapshot-every", min=0),
    ui: bool = typer.Option(
        False, "--ui", help="Also serve the web UI (/ui/) and its API (/api/) on this port."
    ),
    trusted_header: str = ui_option("trusted_header", "--trusted-header"),
    secure_cookies: bool = ui_option("secure_cookies", "--secure-cookies"),
    # -- predlog (issue 14) --
    log_store: str | None = _serve_option("log_store", "--log-store"),
) -> None:
    """Serve models over HTTP: Open Inference Protocol v2, plain JSON and MLflow scoring."""
    import uvicorn

    from shipyard.errors import InvalidInput
    from shipyard.serving import LOG_ENV, SETTINGS_ENV, create_app, open_prediction_log

    if runtime not in get_args(Runtime):
        raise InvalidInput(f"--runtime must be onnx, native or auto. Got '{runtime}' instead.")
    if compactor not in ("process", "thread"):
        raise InvalidInput(f"--compactor must be process or thread. Got '{compactor}' instead.")
    if ui and workers > 1:
        raise InvalidInput(
            "--ui serves the web UI from one worker; with --workers above 1, run 'shipyard ui' "
            "beside the server instead."
        )
    if snapshot_every and workers > 1:
        raise InvalidInput(
            "--snapshot-every learns in one process: each of several workers would learn only "
            "the labels it receives. Serve with --workers 1, or snapshot with a scheduler "
            "'snapshot' job."
        )
    if log_store and no_log:
        raise InvalidInput(
            "--log-store puts the prediction log's Parquet on an object store; it needs a log: "
            "drop --no-log or --log-store."
        )
    names = tuple(n.strip() for n in models.split(",") if n.strip()) if models else None
    settings = ServeSettings(
        models=names,
        alias=alias,
        runtime=runtime,  # type: ignore[arg-type] # checked above
        auth=not no_auth,
        max_body_bytes=max_body_bytes,
        max_batch_rows=max_batch_rows,
        compactor=compactor,  # type: ignore[arg-type] # checked above
        grpc_port=grpc_port,
        grpc_host=host,
        snapshot_every=snapshot_every,
        # Online-learning snapshots are registered as the user who starts the server.
        learner_actor=cli_settings(ctx).user,
        log_store=log_store or None,
    )
    if grpc_port is not None:
        _check_port_free(host, grpc_port)
    c = client(ctx, notify=ui)  # the UI acts: its changes send [[notify]] rules
    for name in names or ():
        c.registry.get_model(name)  # refuse to start for a model that does not exist
    log_path = None if no_log else str(log_root(ctx, log_dir))
    auth = "no auth (--no-auth)" if no_auth else "bearer tokens"
    console.print(
        f"Serving {', '.join(names) if names else f'every model with @{alias}'} on "
        f"http://{host}:{port} ({runtime} runtime, {auth}, "
        f"log: {log_path or 'off'}"
        + (f" (Parquet on {log_store})" if log_store and log_path else "")
        + f", {workers} worker{'s' if workers > 1 else ''})"
        + (f"; gRPC on {host}:{grpc_port}" if grpc_port is not None else "")
        + (f"; web UI on http://{host}:{port}/ui/" if ui else "")
    )
    if workers > 1:
        c.close()
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        os.environ[LOG_ENV] = log_path or ""
        uvicorn.run(
            "shipyard.serving._factory:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
        return
    # The log's store is reached with the artifact store's options ([storage], env).
    log = open_prediction_log(log_path, settings, c.store.storage_options)
    server_app = create_app(c.store, settings=settings, prediction_log=log, own_resources=True)
    server_app.freeze_heap = True  # see shipyard.serving._fastroute
    if not ui:
        uvicorn.run(server_app, host=host, port=port, log_level="warning")
        return
    from shipyard.ui import create_ui, with_ui

    ui_app = create_ui(
        c.store,
        project=project(ctx),
        settings=ui_settings(trusted_header=trusted_header, secure_cookies=secure_cookies),
        predlog=log_root(ctx, log_dir),
    )
    uvicorn.run(with_ui(server_app, ui_app), host=host, port=port, log_level="warning")


@tokens_app.command("create")
def tokens_create_cmd(
    ctx: typer.Context,
    role: str = typer.Option(..., "--role", help=f"One of: {', '.join(TOKEN_ROLES)}."),
    name: str = typer.Option(None, "--name", help="What the token is for (default: the role)."),
    user: str = typer.Option(
        None,
        "--user",
        help="The user the token acts for on the web UI's /api/ (with their role at the time).",
    ),
) -> None:
    """Create an API token (admins only); it is printed once and stored only as a hash."""
    from shipyard.auth import Tokens

    c = client(ctx, notify=False)
    default = f"{user}-{role}" if user else role
    secret, row = Tokens(c.store).create(role=role, name=name or default, actor=c.user, user=user)
    acts = f", acts for {escape(user)} on /api/" if user else ""
    console.print(
        f"Token {row.id} ({escape(row.name)}, {row.role}{acts}); copy it now, it is not shown "
        "again:"
    )
    typer.echo(secret)


@tokens_app.command("list")
def tokens_list_cmd(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List API tokens (never their secrets)."""
    from shipyard.auth import Tokens

    rows = [
        {
            "id": t.id,
            "name": t.name,
            "role": t.role,
            "user": t.user,
            "created_by": t.created_by,
            "created_at": t.created_at,
            "revoked_at": t.revoked_at,
        }
        for t in Tokens(client(ctx, notify=False).store).list_tokens()
    ]
    if as_json:
        print_json(rows)
        return
    table(
        "API tokens",
        ["id", "name", "role", "user", "created by", "created", "revoked"],
        [tuple(r.values()) for r in rows],
    )


@tokens_app.command("revoke")
def tokens_revoke_cmd(ctx: typer.Context, token_id: int) -> None:
    """Revoke an API token (admins only); servers stop accepting it within seconds."""
    from shipyard.auth import Tokens

    c = client(ctx, notify=False)
    row = Tokens(c.store).revoke(token_id, actor=c.user)
    if row.revoked_at is None:
        fail(f"Token {token_id} was not revoked.")
    console.print(f"Revoked token {token_id} ({row.name}).")
