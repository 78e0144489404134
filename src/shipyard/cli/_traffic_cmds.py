"""``shipyard split`` and ``shipyard traffic``: canary, A/B split and shadow policies.

``shipyard promote churn 4 --canary 10 | --shadow`` (in ``_registry_cmds``) calls
``start_policy`` here.
"""

from __future__ import annotations

import math

import typer

from shipyard.cli._app import JsonOption, app, client, console, print_json, table
from shipyard.errors import InvalidInput
from shipyard.registry import PRODUCTION, Policy


def start_policy(
    name: str,
    version: int,
    *,
    to: str,
    canary: float | None,
    shadow: bool,
    sticky: str | None,
    reason: str,
) -> None:
    """``promote --canary/--shadow``: start a policy instead of moving the alias."""
    if canary is not None and shadow:
        raise InvalidInput("Use either --canary PERCENT or --shadow, not both.")
    if to != PRODUCTION:
        raise InvalidInput("--canary and --shadow apply to production only; drop --to.")
    if sticky is not None and canary is None:
        raise InvalidInput("--sticky applies to --canary (or shipyard split); a shadow sees all.")
    c = client()
    if canary is not None:
        policy = c.traffic.canary(name, version, canary, actor=c.user, sticky=sticky, reason=reason)
    else:
        policy = c.traffic.shadow(name, version, actor=c.user, reason=reason)
    console.print(f"[bold]{name}[/] traffic: {policy.describe()}.")


def parse_weights(items: list[str]) -> dict[int | None, float]:
    """``["3=50", "4=50"]`` (or ``production=50``) → ``{3: 50.0, 4: 50.0}``."""
    out: dict[int | None, float] = {}
    for item in items:
        left, sep, right = item.partition("=")
        left, right = left.strip().lower().lstrip("v"), right.strip().rstrip("%")
        if not sep or not left or not right:
            raise InvalidInput(f"'{item[:40]}' is not VERSION=PERCENT: write e.g. 3=50 4=50.")
        if left == "production":
            version: int | None = None
        elif left.isascii() and left.isdigit() and int(left) > 0:
            version = int(left)
        else:
            raise InvalidInput(f"'{item[:40]}': '{left[:20]}' is not a version number.")
        try:
            weight = float(right)
        except ValueError:
            raise InvalidInput(
                f"'{item[:40]}': '{right[:20]}' is not a percentage (e.g. 3=50)."
            ) from None
        if not math.isfinite(weight):
            raise InvalidInput(f"'{item[:40]}': the percentage must be a finite number.")
        if version in out:
            raise InvalidInput(f"'{item[:40]}' names a version given twice.")
        out[version] = weight
    return out


@app.command("split")
def split_cmd(
    name: str = typer.Argument(..., help="Model name."),
    weights: list[str] = typer.Argument(..., help="VERSION=PERCENT pairs, e.g. 3=50 4=50."),
    sticky: str = typer.Option(None, "--sticky", help="header:<name> or field:<column>."),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """A/B test: each version answers its percentage of requests (approvals needed)."""
    parsed = parse_weights(weights)
    c = client()
    policy = c.traffic.split(name, parsed, actor=c.user, sticky=sticky, reason=reason)
    console.print(f"[bold]{name}[/] traffic: {policy.describe()}.")


@app.command("traffic")
def traffic_cmd(
    name: str = typer.Argument(..., help="Model name."),
    clear: bool = typer.Option(False, "--clear", help="End the policy in force."),
    reason: str = typer.Option("", "--reason"),
    limit: int = typer.Option(10, "--limit", min=1, help="History rows shown."),
    as_json: bool = JsonOption,
) -> None:
    """Show a model's traffic policy and its recent history, or end it (--clear)."""
    c = client()
    if clear:
        c.traffic.clear(name, actor=c.user, reason=reason)
        console.print(f"[bold]{name}[/]: traffic policy ended; production answers everything.")
        return
    current = c.traffic.current(name)
    history = c.traffic.history(name, limit=limit)
    production = c.registry.aliases(name).get(PRODUCTION)
    if as_json:
        print_json(
            {
                "model": name,
                "production": production,
                "current": current.to_json() if current else None,
                "history": [p.to_json() for p in history],
            }
        )
        return
    now = current.describe() if current else _none()
    console.print(f"[bold]{name}[/] (production v{production}): {now}")
    table(
        f"Traffic policy history of {name}",
        ["id", "at", "by", "kind", "policy", "reason"],
        [(p.id, p.created_at, p.created_by, p.kind, _row(p), p.reason) for p in history],
    )


def _none() -> str:
    return "no policy (production answers everything)"


def _row(policy: Policy) -> str:
    return policy.describe() if policy.active else "ended"
