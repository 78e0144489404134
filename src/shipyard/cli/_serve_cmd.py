"""``shipyard serve`` (``--ui``: with the web UI beside it) and ``shipyard tokens``."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any, get_args

import typer
from rich.markup import escape

from shipyard.cli._app import JsonOption, app, client, console, fail, print_json, project, table
from shipyard.cli._app import settings as cli_settings
from shipyard.cli._options import listed, serve_option
from shipyard.cli._predictions_cmds import log_root
from shipyard.cli._ui_cmd import ui_option, ui_settings
from shipyard.roles import TOKEN_ROLES
from shipyard.settings import Runtime, ServeSettings

tokens_app = typer.Typer(
    help="Bearer API tokens for the model server and the web UI's /api.", no_args_is_help=True
)
app.add_typer(tokens_app, name="tokens")


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


def _uvicorn_options(log_level: str = "info", access_log: bool = False) -> dict[str, Any]:
    """How ``serve`` runs uvicorn: uvicorn's log format for its own lines and for
    Shipyard's (the ``shipyard`` logger: version switches, traffic policies, learner
    snapshots) at ``log_level``; the access log (a line per request) only when asked; and
    the httptools protocol with each answer's head and body in one write (``serving``'s
    ``ShipyardHttpProtocol``).

    The protocol is named by an import string, not passed as the class: with ``--workers``,
    each worker process unpickles uvicorn's config before it starts answering the parent's
    health checks, and a class there would import the whole serving stack first; on a busy
    machine that took over the 5 s uvicorn waits, and the worker was killed and restarted.
    """
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["shipyard"] = {
        "handlers": ["default"],
        "level": log_level.upper(),
        "propagate": False,
    }
    return {
        "log_level": log_level,
        "log_config": config,
        "access_log": access_log,
        "http": _HTTP_PROTOCOL,
    }


#: The levels ``--log-level`` takes, quietest last.
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


#: ``shipyard.serving.ShipyardHttpProtocol``, as uvicorn imports it.
_HTTP_PROTOCOL = "shipyard.serving:ShipyardHttpProtocol"


@app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    models: str = serve_option("models"),
    alias: str = serve_option("alias"),
    workers: int = typer.Option(1, min=1, help="Worker processes (each loads every model)."),
    runtime: str = serve_option("runtime"),
    no_auth: bool = serve_option(
        "auth", "--no-auth", default=not ServeSettings.model_fields["auth"].default
    ),
    log_dir: Path = typer.Option(
        None, help="Prediction log folder (default: predictions/ in SHIPYARD_HOME)."
    ),
    no_log: bool = typer.Option(False, "--no-log", help="Keep no prediction log."),
    compactor: str = serve_option("compactor"),
    max_body_bytes: int = serve_option("max_body_bytes"),
    max_batch_rows: int = serve_option("max_batch_rows"),
    grpc_port: int | None = serve_option("grpc_port", min=1, max=65535),
    snapshot_every: int = serve_option("snapshot_every", "--snapshot-every", min=0),
    ui: bool = typer.Option(
        False, "--ui", help="Also serve the web UI (/ui/) and its API (/api/) on this port."
    ),
    trusted_header: str = ui_option("trusted_header", "--trusted-header"),
    secure_cookies: bool = ui_option("secure_cookies", "--secure-cookies"),
    # -- replicas (issue 14) --
    replica: str = serve_option("replica", "--replica", envvar="SHIPYARD_REPLICA"),
    on_log_full: str = serve_option("on_log_full", "--on-log-full"),
    # -- security (issue 14) --------------------------------------------------------------
    rate_limit: str = serve_option("rate_limit", "--rate-limit"),
    rate_limit_redis: str = serve_option("rate_limit_redis_url", "--rate-limit-redis"),
    cors_origins: str = serve_option("cors_origins", "--cors-origins"),
    allowed_hosts: str = serve_option("allowed_hosts", "--allowed-hosts"),
    # -- predlog (issue 14) --
    log_store: str | None = serve_option("log_store", "--log-store"),
    log_level: str = typer.Option(
        "info",
        "--log-level",
        help="debug, info (the server's start, version switches, traffic policies, learner "
        "snapshots), warning, error or critical.",
    ),
    access_log: bool = typer.Option(
        False, "--access-log", help="Also log a line per request (at info)."
    ),
) -> None:
    """Serve models over HTTP: Open Inference Protocol v2, plain JSON and MLflow scoring."""
    import uvicorn

    from shipyard.errors import InvalidInput
    from shipyard.serving import create_app, open_prediction_log

    if log_level.lower() not in LOG_LEVELS:
        raise InvalidInput(
            f"--log-level must be one of {', '.join(LOG_LEVELS)}. Got '{log_level}' instead."
        )
    log_options = _uvicorn_options(log_level.lower(), access_log)
    if runtime not in get_args(Runtime):
        raise InvalidInput(f"--runtime must be onnx, native or auto. Got '{runtime}' instead.")
    if compactor not in ("process", "thread"):
        raise InvalidInput(f"--compactor must be process or thread. Got '{compactor}' instead.")
    if on_log_full not in ("answer", "refuse"):
        raise InvalidInput(f"--on-log-full must be answer or refuse. Got '{on_log_full}' instead.")
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
    if replica and len(replica) > 128:
        raise InvalidInput(
            f"--replica (SHIPYARD_REPLICA) must be at most 128 characters. Got {len(replica)}."
        )
    if log_store and no_log:
        raise InvalidInput(
            "--log-store puts the prediction log's Parquet on an object store; it needs a log: "
            "drop --no-log or --log-store."
        )
    names = tuple(n.strip() for n in models.split(",") if n.strip()) if models else None
    settings = _serve_settings(
        models=names,
        alias=alias,
        runtime=runtime,  # checked above
        auth=not no_auth,
        max_body_bytes=max_body_bytes,
        max_batch_rows=max_batch_rows,
        compactor=compactor,  # checked above
        grpc_port=grpc_port,
        grpc_host=host,
        snapshot_every=snapshot_every,
        # Online-learning snapshots are registered as the user who starts the server.
        learner_actor=cli_settings(ctx).user,
        # Every worker of this server names the same replica: the serve command's process.
        replica=replica or f"{socket.gethostname()}-{os.getpid()}",
        on_log_full=on_log_full,  # checked above
        rate_limit=_rate_limit(rate_limit),
        rate_limit_redis_url=rate_limit_redis or None,
        cors_origins=listed(cors_origins),
        allowed_hosts=listed(allowed_hosts),
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
        _serve_workers(
            settings, log_path, host, port, workers, c.store.storage_options, log_options
        )
        return
    # The log's store is reached with the artifact store's options ([storage], env).
    log = open_prediction_log(log_path, settings, c.store.storage_options)
    server_app = create_app(c.store, settings=settings, prediction_log=log, own_resources=True)
    server_app.freeze_heap = True  # see shipyard.serving._fastroute
    if not ui:
        uvicorn.run(server_app, host=host, port=port, **log_options)
        return
    from shipyard.serving import protect
    from shipyard.ui import create_ui, with_ui

    ui_app = create_ui(
        c.store,
        project=project(ctx),
        settings=ui_settings(trusted_header=trusted_header, secure_cookies=secure_cookies),
        predlog=log_root(ctx, log_dir),
    )
    ui_app = protect(ui_app, settings)  # the same Host and CORS rules on /ui and /api
    uvicorn.run(with_ui(server_app, ui_app), host=host, port=port, **log_options)


def _serve_workers(
    settings: ServeSettings,
    log_path: str | None,
    host: str,
    port: int,
    workers: int,
    storage_options: dict[str, Any],
    log_options: dict[str, Any],
) -> None:
    """Run ``workers`` uvicorn worker processes on one socket, sharing their metrics.

    A scrape reaches one worker; each adds up every worker's counts from a folder that
    lives as long as this server (``shipyard.serving._metrics_shared``).
    """
    import shutil
    import tempfile

    import uvicorn

    from shipyard.serving import LOG_ENV, SETTINGS_ENV

    shared = tempfile.mkdtemp(prefix="shipyard-metrics-")
    try:
        settings = settings.model_copy(update={"shared_metrics_dir": shared})
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        os.environ[LOG_ENV] = log_path or ""
        # The workers build their store from the environment: [storage] of shipyard.toml
        # reaches them through the variable (which already won over it key by key).
        os.environ["SHIPYARD_STORAGE_OPTIONS"] = json.dumps(storage_options)
        uvicorn.run(
            "shipyard.serving._factory:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            **log_options,
        )
    finally:
        shutil.rmtree(shared, ignore_errors=True)


#: Settings whose option is not named after the field.
_OPTION_NAMES = {"grpc_host": "--host", "rate_limit_redis_url": "--rate-limit-redis"}


def _serve_settings(**values: Any) -> ServeSettings:
    """``ServeSettings`` from the command line, a value out of range refused in one sentence
    naming the option (``--max-batch-rows 0``), not a validation traceback."""
    from pydantic import ValidationError

    from shipyard.errors import InvalidInput

    try:
        return ServeSettings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        option = _OPTION_NAMES.get(field, "--" + field.replace("_", "-"))
        raise InvalidInput(
            f"{option}: {first['msg']} (got {first.get('input')!r}). See shipyard serve --help."
        ) from None


def _rate_limit(text: str | None) -> str | None:
    """``--rate-limit`` checked with the one message of ``Rate.parse``."""
    if not text:
        return None
    from shipyard.auth import Rate

    Rate.parse(text)
    return text.strip().lower()


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
    team: str = typer.Option(
        None,
        "--team",
        help="The team this token's predictions are charged to ('shipyard usage --by team').",
    ),
) -> None:
    """Create an API token (admins only); it is printed once and stored only as a hash."""
    from shipyard.auth import Tokens

    c = client(ctx, notify=False)
    default = f"{user}-{role}" if user else role
    secret, row = Tokens(c.store).create(
        role=role, name=name or default, actor=c.user, user=user, team=team
    )
    acts = f", acts for {escape(user)} on /api/" if user else ""
    acts += f", team {escape(team)}" if team else ""
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
            "team": t.team,
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
        ["id", "name", "role", "user", "team", "created by", "created", "revoked"],
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
