"""``shipyard request-approval`` and ``shipyard reject``: the review of a version around
``shipyard approve`` (the approvals inbox of the web UI shows the same requests)."""

from __future__ import annotations

import typer

from shipyard.cli._app import app, client, console


@app.command("request-approval")
def request_approval_cmd(
    ctx: typer.Context,
    name: str,
    version: int,
    comment: str = typer.Option("", "--comment", help="What the approvers should know."),
) -> None:
    """Ask the approvers to review a version, with a comment (refused for an archived or
    approved version, and while a request is open)."""
    c = client(ctx)
    request = c.request_approval(name, version, comment=comment)
    console.print(
        f"{c.user} asked for a review of [bold]{name} v{version}[/] (request #{request.id}).",
        highlight=False,
    )


@app.command("reject")
def reject_cmd(
    ctx: typer.Context,
    name: str,
    version: int,
    reason: str = typer.Option(..., "--reason", help="Why this version must not go further."),
) -> None:
    """Reject a version, with a reason (you must be an approver and not its author); closes
    its open approval request."""
    c = client(ctx)
    c.reject(name, version, reason=reason)
    console.print(f"{c.user} rejected [bold]{name} v{version}[/].", highlight=False)
