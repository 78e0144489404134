"""The Typer app, its shared options, and the one place errors become exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from shipyard.client import Client
from shipyard.errors import InvalidInput, ShipyardError
from shipyard.settings import Settings

if TYPE_CHECKING:
    from shipyard.config import ProjectConfig

app = typer.Typer(
    name="shipyard",
    help="Shipyard: track, package, approve, deploy and monitor models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

JsonOption = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")


class Invocation:
    """What one command runs with, kept on ``ctx.obj``: the settings, read once from the
    environment; the project file, parsed when a command first needs it; the clients opened,
    closed when the command ends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._project: ProjectConfig | None = None
        self._clients: list[Client] = []

    @property
    def project(self) -> ProjectConfig:
        """``shipyard.toml`` (or ``SHIPYARD_CONFIG``), parsed and checked on first use."""
        if self._project is None:
            from shipyard.config import load_project

            self._project = load_project(self.settings.config)
        return self._project

    def client(self, *, notify: bool = True) -> Client:
        """An open client; ``notify=False`` for a command that changes nothing in the registry
        (it then needs no ``[[notify]]`` rules, and reads only the project file's ``[storage]``
        table: how the artifact store is reached)."""
        from shipyard.config import ProjectConfig, load_storage

        if notify:
            project = self.project
        else:
            project = ProjectConfig(storage=load_storage(self.settings.config))
        c = Client(self.settings, project=project).open()
        self._clients.append(c)
        if c.notifier is not None:
            c.notifier.on_failure = _notification_failed
        return c

    def close(self) -> None:
        while self._clients:
            self._clients.pop().close()


@app.callback()
def _start(ctx: typer.Context) -> None:
    # No docstring: the app's help stays the command's help.
    ctx.obj = Invocation(Settings())
    ctx.call_on_close(ctx.obj.close)


def invocation(ctx: typer.Context) -> Invocation:
    """The running command's ``Invocation`` (``ctx.obj``, set by the app's callback)."""
    obj = ctx.find_object(Invocation)
    if obj is None:  # a command called outside ``app``: there is no callback to have run
        raise RuntimeError("shipyard commands run through shipyard.cli.app")
    return obj


def settings(ctx: typer.Context) -> Settings:
    """The running command's settings."""
    return invocation(ctx).settings


def project(ctx: typer.Context) -> ProjectConfig:
    """The running command's project file, parsed (once)."""
    return invocation(ctx).project


def client(ctx: typer.Context, *, notify: bool = True) -> Client:
    """An open client of the running command (closed when it ends); see ``Invocation.client``."""
    return invocation(ctx).client(notify=notify)


def _notification_failed(record: Any) -> None:
    """Show a notification a channel did not deliver (the change itself is committed)."""
    errors = "; ".join(f"{k}: {v['error']}" for k, v in record.deliveries.items() if not v["ok"])
    err_console.print(
        "[bold yellow]Warning:[/] "
        + escape(
            f"notification {record.id} ({record.rule}, {record.metric}) was not delivered "
            f"({errors}); the change itself is saved. See 'shipyard alerts list'."
        ),
        highlight=False,
        soft_wrap=True,
    )


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def exit_code(error: ShipyardError) -> int:
    """The exit code of a command that raised ``error`` (the rule in ``run_cli``).

    >>> from shipyard.errors import NotFound, SchemaViolation
    >>> exit_code(NotFound("There is no model 'chrun'.")), exit_code(SchemaViolation("..."))
    (1, 2)
    """
    return 2 if isinstance(error, InvalidInput) else 1


def run_cli(args: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code; a ``ShipyardError`` is one line on stderr.

    Exit codes (README, "Exit codes"):

    - 0: done; a check found nothing wrong.
    - 1: the request was well formed, and the answer is no: a check found a problem (drift, a
      quality breach, a fired rule, a tampered audit log, a canary to roll back, a failed
      job, labels of unknown predictions); a named thing is not in the store or shipyard.toml
      (``NotFound``); the change was refused (``PermissionDenied``, ``ApprovalRequired``,
      ``AlreadyExists``, ``InvalidTransition``); or the installation or store failed
      (``StoreUnavailable``, ``SchemaOutOfDate``, ``IntegrityError``, ``MissingDependency``).
    - 2: the input is wrong whatever the store holds: an unknown command or option, a
      malformed value (Typer's usage errors), a file that is missing, unreadable or does not
      fit the model (``InvalidInput``, ``SchemaViolation``: a CSV missing a column), an
      invalid shipyard.toml.
    - 130: interrupted (Ctrl-C).
    """
    try:
        app(args=list(args) if args is not None else None, prog_name="shipyard")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ShipyardError as exc:
        err_console.print(
            f"[bold red]Error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True
        )
        return exit_code(exc)
    return 0


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    t = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*(_cell(v) for v in row))
    console.print(t)


def _cell(value: Any) -> str | Text:
    """A table cell: plain text (markup escaped), or a styled ``rich.text.Text`` as it is."""
    if isinstance(value, Text):
        return value
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def row_progress(*, quiet: bool = False) -> Progress:
    """The commands' transient progress bar over rows (description, bar, n of total, time),
    hidden when ``quiet`` (e.g. ``--json``)."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet,
    )
