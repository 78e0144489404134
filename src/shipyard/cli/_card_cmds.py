"""``shipyard card`` (a version's model card: Markdown, ``--json`` or ``--html FILE``), ``card
edit`` (the sections a person writes) and ``shipyard risks add|list|close`` (the risk
register; ``shipyard approve --ack-risk`` in ``_registry_cmds`` acknowledges open risks)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from shipyard.cli._app import JsonOption, app, client, console, print_json, project, table
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.registry import Risk


class _ShowByDefault(TyperGroup):
    """``shipyard card NAME VERSION`` runs ``card show NAME VERSION``; ``card edit`` edits."""

    # ``ctx`` is typer's vendored click Context (a private module): typed loosely here.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


card_app = typer.Typer(
    cls=_ShowByDefault,
    help="A version's model card: shipyard card NAME VERSION [--html FILE | --json]; "
    "shipyard card edit NAME VERSION to write its sections.",
    no_args_is_help=True,
)
app.add_typer(card_app, name="card")
risks_app = typer.Typer(
    help="The risk register of a model: add, list, close.", no_args_is_help=True
)
app.add_typer(risks_app, name="risks")


@card_app.command("show")
def card_show_cmd(
    ctx: typer.Context,
    name: str,
    version: int,
    html: Path = typer.Option(None, "--html", metavar="FILE", help="Write an HTML page."),
    as_json: bool = JsonOption,
) -> None:
    """Print a version's model card as Markdown (or JSON), or write it as an HTML page."""
    from shipyard.checks import build_card, card_html, card_markdown

    if html is not None and as_json:
        raise InvalidInput("Use either --html FILE or --json, not both.")
    c = client(ctx, notify=False)  # shipyard.toml is read for the model's policy only
    card = build_card(c.store, name, version, project=project(ctx))
    if as_json:
        print_json(card.to_json())
    elif html is not None:
        from shipyard.cli._io import replace_file

        replace_file(html, card_html(card).encode("utf-8"))  # rendered first: no half page
        console.print(f"Wrote the model card of [bold]{name} v{version}[/] to {html}.")
    else:
        sys.stdout.write(card_markdown(card))


@card_app.command("edit")
def card_edit_cmd(
    ctx: typer.Context,
    name: str,
    version: int,
    section: str = typer.Option(None, "--section", help="e.g. intended_use, caveats."),
    text: str = typer.Option(None, "--text", help="The section's new text."),
    file: Path = typer.Option(
        None, "--file", help="A Markdown file: each '## Heading' block is one section."
    ),
) -> None:
    """Write sections of a version's model card (all of a file's, or none)."""
    from shipyard.registry import CardNotes, parse_card_markdown

    if file is not None:
        if section is not None or text is not None:
            raise InvalidInput("Use either --file or --section with --text, not both.")
        sections = parse_card_markdown(_read_text(file), source=f"'{file}'")
    elif section is not None and text is not None:
        sections = {section: text}
    else:
        raise InvalidInput(
            'Say what to write: --section S --text "..." or --file notes.md (## headings).'
        )
    c = client(ctx)
    written = CardNotes(c.store).set_many(name, version, sections, actor=c.user)
    console.print(f"Wrote {', '.join(written)} of the model card of [bold]{name} v{version}[/].")


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise InvalidInput(f"No such file: '{path}'.")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Cannot read '{path}' as UTF-8 text: {exc}.") from exc


@risks_app.command("add")
def risks_add_cmd(
    ctx: typer.Context,
    name: str,
    risk: str = typer.Option(..., "--risk", help="What could go wrong, in a line."),
    severity: str = typer.Option(..., "--severity", help="low, medium or high."),
    owner: str = typer.Option(..., "--owner", help="Who mitigates it."),
    mitigation: str = typer.Option("", "--mitigation", help="What is done about it."),
    version: int = typer.Option(None, "--version", help="Only this version (default: all)."),
    as_json: bool = JsonOption,
) -> None:
    """Add an open risk to a model's register (high risks block approvals until acknowledged)."""
    from shipyard.registry import Risks

    c = client(ctx)
    added = Risks(c.store).add(
        name,
        title=risk,
        severity=severity,
        owner=owner,
        mitigation=mitigation,
        version=version,
        actor=c.user,
    )
    if as_json:
        print_json(_risk_json(added))
        return
    console.print(f"Added risk [bold]#{added.id}[/] ({added.severity}) to {name}, {added.scope}.")


@risks_app.command("list")
def risks_list_cmd(
    ctx: typer.Context,
    name: str,
    version: int = typer.Option(None, "--version", help="Only the risks of this version."),
    show_all: bool = typer.Option(False, "--all", help="Closed risks too."),
    as_json: bool = JsonOption,
) -> None:
    """List a model's open risks (or all of them)."""
    from shipyard.registry import Risks

    c = client(ctx, notify=False)
    risks = Risks(c.store).list(name, version=version, include_closed=show_all)
    if as_json:
        print_json([_risk_json(r) for r in risks])
        return
    if not risks:
        console.print(f"No {'' if show_all else 'open '}risks for {name}.")
        return
    print_risks(f"Risks of {name}", risks, closed=show_all)


@risks_app.command("close")
def risks_close_cmd(
    ctx: typer.Context,
    name: str,
    risk_id: int = typer.Argument(..., metavar="ID"),
    reason: str = typer.Option(..., "--reason", help="How the risk was met."),
) -> None:
    """Close an open risk with the reason (a high risk is closed by an approver)."""
    from shipyard.registry import Risks

    c = client(ctx)
    closed = Risks(c.store).close(name, risk_id, actor=c.user, resolution=reason)
    console.print(f"Closed risk #{closed.id} of {name}.")


def print_risks(title: str, risks: list[Risk], *, closed: bool = False) -> None:
    """A table of risks (with their status and resolution when ``closed``)."""
    columns = ["id", "severity", "risk", "owner", "mitigation", "scope"]
    rows: list[list[Any]] = [
        [r.id, r.severity, r.title, r.owner, r.mitigation, r.scope] for r in risks
    ]
    if closed:
        columns += ["status", "resolution"]
        for row, r in zip(rows, risks, strict=True):
            row += [r.status, r.resolution]
    table(title, columns, rows)


def _risk_json(r: Risk) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(r)
