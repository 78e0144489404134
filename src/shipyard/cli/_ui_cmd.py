"""``shipyard ui``: the web UI on its own port (``shipyard serve --ui`` puts it beside the
model server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from shipyard.cli._app import app, client, console, project
from shipyard.cli._options import listed, serve_option
from shipyard.cli._predictions_cmds import log_root
from shipyard.settings import ServeSettings, UiSettings


def ui_option(field: str, *flags: str, **kw: Any) -> Any:
    """The option setting ``UiSettings.<field>``: its default and help are the field's."""
    info = UiSettings.model_fields[field]
    return typer.Option(info.default, *flags, help=info.description, **kw)


def ui_settings(
    *, trusted_header: str | None, secure_cookies: bool, session_hours: float | None = None
) -> UiSettings:
    """``UiSettings`` from the command line's options (``None``: the default)."""
    chosen: dict[str, Any] = {"trusted_header": trusted_header or None}
    if session_hours is not None:
        chosen["session_hours"] = session_hours
    return UiSettings(secure_cookies=secure_cookies, **chosen)


@app.command("ui")
def ui_cmd(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(8600, help="Port to listen on."),
    trusted_header: str = ui_option("trusted_header", "--trusted-header"),
    session_hours: float = ui_option("session_hours", "--session-hours", min=0.001),
    secure_cookies: bool = ui_option("secure_cookies", "--secure-cookies"),
    log_dir: Path = typer.Option(
        None,
        help="The prediction log folder (for tracing predictions and sample rows; default: "
        "the one 'shipyard serve' writes, predictions/ in SHIPYARD_HOME).",
    ),
    # the same Host and CORS rules as shipyard serve (and serve --ui) puts on /ui and /api
    allowed_hosts: str = serve_option("allowed_hosts", "--allowed-hosts"),
    cors_origins: str = serve_option("cors_origins", "--cors-origins"),
) -> None:
    """Serve the web UI: the model catalogue, monitoring, approvals, actions and audit, for
    each user's role (log in with 'shipyard users set-password')."""
    import uvicorn

    from shipyard.serving import protect
    from shipyard.ui import create_ui

    settings = ui_settings(
        trusted_header=trusted_header, secure_cookies=secure_cookies, session_hours=session_hours
    )
    c = client(ctx)  # the UI acts: its registry changes send the [[notify]] rules
    predlog = log_root(ctx, log_dir)
    ui_app = create_ui(c.store, project=project(ctx), settings=settings, predlog=predlog)
    guard = ServeSettings(allowed_hosts=listed(allowed_hosts), cors_origins=listed(cors_origins))
    ui_app = protect(ui_app, guard)
    who = f"trusted header {settings.trusted_header}, " if settings.trusted_header else ""
    console.print(
        f"Web UI on http://{host}:{port}/ui/ ({who}passwords and API tokens; "
        f"prediction log: {predlog})"
    )
    uvicorn.run(ui_app, host=host, port=port, log_level="warning")
