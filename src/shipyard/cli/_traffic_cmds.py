"""``shipyard split`` and ``shipyard traffic show|history|clear|check|advance|rollouts``: canary,
A/B split and shadow policies, the automatic canary judgement and rollouts.

``shipyard promote churn 4 --canary 10 [--auto] | --shadow`` (in ``_registry_cmds``) calls
``start_policy`` here. ``traffic check`` exits 0 for promote or wait and 1 for rollback, so a
cron line or a scheduler ``command`` job can act on it (or pass ``--act``). ``traffic advance``
is one pass over the rollouts whose bake ended (the scheduler runs one on every tick).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from shipyard.cli._app import JsonOption, app, client, console, print_json, project, table
from shipyard.cli._options import parse_time
from shipyard.cli._predictions_cmds import LogDirOption, log_root
from shipyard.errors import InvalidInput, InvalidTransition

if TYPE_CHECKING:
    from shipyard.checks import CanaryVerdict
    from shipyard.client import Client
    from shipyard.registry import Policy

traffic_app = typer.Typer(
    help="Traffic policies: show, history, clear, and check a canary.", no_args_is_help=True
)
app.add_typer(traffic_app, name="traffic")


@dataclass(frozen=True)
class Rollout:
    """``promote``'s ``--auto``, ``--steps`` and ``--bake``, as typed."""

    auto: bool = False
    steps: str | None = None
    bake: str | None = None


def start_policy(
    ctx: typer.Context,
    name: str,
    version: int,
    *,
    to: str,
    canary: float | None,
    shadow: bool,
    sticky: str | None,
    reason: str,
    force: bool = False,
    rollout: Rollout | None = None,
) -> None:
    """``promote --canary/--shadow``: start a policy instead of moving the alias; with
    ``--auto``, a rollout."""
    from shipyard.registry import PRODUCTION

    rollout = rollout or Rollout()
    if canary is not None and shadow:
        raise InvalidInput("Use either --canary PERCENT or --shadow, not both.")
    if to != PRODUCTION:
        raise InvalidInput("--canary and --shadow apply to production only; drop --to.")
    if sticky is not None and canary is None:
        raise InvalidInput("--sticky applies to --canary (or shipyard split); a shadow sees all.")
    if rollout.auto and canary is None:
        raise InvalidInput("--auto steps a canary up: give its first share, e.g. --canary 10.")
    if not rollout.auto and (rollout.steps is not None or rollout.bake is not None):
        raise InvalidInput("--steps and --bake apply to --auto (e.g. --canary 10 --auto).")
    if rollout.auto:
        assert canary is not None
        _start_rollout(ctx, name, version, canary, rollout, sticky=sticky, reason=reason)
        return
    c = client(ctx)
    if canary is not None:
        policy = c.traffic.canary(
            name, version, canary, actor=c.user, sticky=sticky, reason=reason, force=force
        )
    else:
        policy = c.traffic.shadow(name, version, actor=c.user, reason=reason)
    console.print(f"[bold]{name}[/] traffic: {policy.describe()}.")


def _start_rollout(
    ctx: typer.Context,
    name: str,
    version: int,
    canary: float,
    options: Rollout,
    *,
    sticky: str | None,
    reason: str,
) -> None:
    from shipyard.config import parse_window
    from shipyard.registry import Rollouts, check_steps, default_steps

    if not (math.isfinite(canary) and 0 < canary < 100):
        raise InvalidInput(
            f"--canary is the first step's share of the traffic: a percentage above 0 and below "
            f"100, e.g. 10. Got {canary:g} instead."
        )
    steps = (
        default_steps(canary) if options.steps is None else check_steps(parse_steps(options.steps))
    )
    if steps[0] != canary:
        raise InvalidInput(
            f"The first of --steps ({steps[0]:g}) must be the canary's share (--canary "
            f"{canary:g}), e.g. --canary {canary:g} --steps {canary:g},50,100."
        )
    bake = parse_window(options.bake or "30m", option="--bake")
    c = client(ctx)
    started = Rollouts(c.store, project(ctx)).start(
        name, version, steps, bake=bake, actor=c.user, sticky=sticky, reason=reason
    )
    path = " → ".join(f"{s:g}%" for s in started.steps)
    console.print(
        f"[bold]{name}[/] rollout #{started.id} of v{version}: {path}, each step judged after "
        f"{options.bake or '30m'} ('shipyard scheduler' or 'shipyard traffic advance' drives it).",
        highlight=False,
    )


def parse_steps(text: str) -> list[float]:
    """``"10,50,100"`` → ``[10.0, 50.0, 100.0]``; ``InvalidInput`` for anything else."""
    out: list[float] = []
    for item in text.split(","):
        try:
            out.append(float(item.strip().rstrip("%")))
        except ValueError:
            raise InvalidInput(
                f"--steps takes percentages separated by commas, e.g. 10,50,100. Got "
                f"'{text[:60]}' instead."
            ) from None
    return out


@app.command("split")
def split_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    weights: list[str] = typer.Argument(..., help="VERSION=PERCENT pairs, e.g. 3=50 4=50."),
    sticky: str = typer.Option(None, "--sticky", help="header:<name> or field:<column>."),
    reason: str = typer.Option("", "--reason"),
    force: bool = typer.Option(
        False, "--force", help="Admins only, with --reason: split without passing gates."
    ),
) -> None:
    """A/B test: each version answers its percentage of requests (approvals and passing
    gates needed)."""
    from shipyard.registry import parse_weights

    parsed = parse_weights(weights)
    c = client(ctx)
    policy = c.traffic.split(name, parsed, actor=c.user, sticky=sticky, reason=reason, force=force)
    console.print(f"[bold]{name}[/] traffic: {policy.describe()}.")


@traffic_app.command("show")
def traffic_show_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    limit: int = typer.Option(10, "--limit", min=1, help="History rows shown."),
    as_json: bool = JsonOption,
) -> None:
    """Show a model's traffic policy in force and its recent history."""
    from shipyard.registry import PRODUCTION, Rollouts

    c = client(ctx, notify=False)
    current = c.traffic.current(name)
    history = c.traffic.history(name, limit=limit)
    production = c.registry.aliases(name).get(PRODUCTION)
    rollout = Rollouts(c.store).running(name)
    if as_json:
        print_json(
            {
                "model": name,
                "production": production,
                "current": current.to_json() if current else None,
                "rollout": rollout.to_json() if rollout else None,
                "history": [p.to_json() for p in history],
            }
        )
        return
    now = current.describe() if current else _none()
    console.print(f"[bold]{name}[/] (production v{production}): {now}")
    if rollout is not None:
        console.print(
            f"{rollout.describe()}; next judged {rollout.next_at:%Y-%m-%d %H:%M:%S} UTC.",
            highlight=False,
        )
    _history_table(name, history)


@traffic_app.command("history")
def traffic_history_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    limit: int = typer.Option(None, "--limit", min=1, help="Newest rows only."),
    as_json: bool = JsonOption,
) -> None:
    """Every traffic policy change of a model, newest first (ends included)."""
    history = client(ctx, notify=False).traffic.history(name, limit=limit)
    if as_json:
        print_json({"model": name, "history": [p.to_json() for p in history]})
        return
    _history_table(name, history)


@traffic_app.command("clear")
def traffic_clear_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """End the policy in force: production answers everything again."""
    c = client(ctx)
    c.traffic.clear(name, actor=c.user, reason=reason)
    console.print(f"[bold]{name}[/]: traffic policy ended; production answers everything.")


@traffic_app.command("check")
def traffic_check_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    since: str = typer.Option(
        None,
        "--since",
        help="Judge from this time (UTC, e.g. 2026-11-23T15:00) or this long ago (30m, 2h); "
        "never before the policy started (the default).",
    ),
    min_requests: int = typer.Option(100, "--min-requests", min=1, help="Requests per arm."),
    max_error_rate_increase: float = typer.Option(
        0.02, "--max-error-rate-increase", help="Allowed error-rate excess, absolute (0.02)."
    ),
    max_p99_ratio: float = typer.Option(
        1.5, "--max-p99-ratio", help="Allowed canary p99 / production p99 (plus 5 ms)."
    ),
    no_drift: bool = typer.Option(False, "--no-drift", help="Skip the output-drift gate."),
    act: bool = typer.Option(
        False, "--act", help="Roll back (end the canary) or promote it, as decided."
    ),
    log_dir: Path = LogDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Judge the canary against production; exit 0 promote or wait, 1 rollback."""
    from shipyard.checks import CanaryRules, check_canary

    defaults = CanaryRules()
    rules = CanaryRules(
        min_requests=min_requests,
        max_error_rate_increase=max_error_rate_increase,
        max_p99_ratio=max_p99_ratio,
        drift=None if no_drift else defaults.drift,
    )
    c = client(ctx)
    verdict = check_canary(
        c.store, name, log_root(ctx, log_dir), since=parse_time(since, "--since"), rules=rules
    )
    action = _act(c, verdict) if act else None
    if as_json:
        print_json({**verdict.to_dict(), "action": action})
    else:
        _print_verdict(verdict, action)
    if verdict.decision == "rollback":
        raise typer.Exit(1)


@traffic_app.command("advance")
def traffic_advance_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="Only this model's rollout (default: every model's)."),
    log_dir: Path = LogDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Judge the rollouts whose bake ended, once: step, promote or roll back each (for cron;
    'shipyard scheduler' does this on every tick). Exit 1 if one could not be judged."""
    from shipyard.checks import advance_rollouts

    c = client(ctx)
    steps = advance_rollouts(
        c.store,
        now=datetime.now(UTC),
        project=project(ctx),
        actor=c.user,
        log_root=log_root(ctx, log_dir),
        model=name,
    )
    if as_json:
        print_json({"steps": [s.to_json() for s in steps]})
    elif not steps:
        console.print("No rollout is due: each one's bake is still running (or none runs).")
    else:
        table(
            "Rollouts advanced",
            ["model", "rollout", "action", "now", "what happened"],
            [
                (s.rollout.model_name, s.rollout.id, s.action, s.rollout.status, s.message)
                for s in steps
            ],
        )
    if any(s.action == "failed" for s in steps):
        raise typer.Exit(1)


@traffic_app.command("rollouts")
def traffic_rollouts_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    limit: int = typer.Option(None, "--limit", min=1, help="Newest rollouts only."),
    as_json: bool = JsonOption,
) -> None:
    """A model's rollouts (promote --canary N --auto), newest first, with their outcome."""
    from shipyard.registry import Rollouts

    rollouts = Rollouts(client(ctx, notify=False).store).history(name, limit=limit)
    if as_json:
        print_json({"model": name, "rollouts": [r.to_json() for r in rollouts]})
        return
    table(
        f"Rollouts of {name}",
        ["id", "version", "status", "at", "steps (bake)", "started", "message"],
        [
            (
                r.id,
                f"v{r.version}",
                r.status,
                f"{r.percent:g}%",
                f"{','.join(f'{s:g}' for s in r.steps)} ({r.bake_seconds / 60:g}m)",
                f"{r.started_at:%Y-%m-%d %H:%M} by {r.started_by}",
                r.message,
            )
            for r in rollouts
        ],
    )


def _act(c: Client, verdict: CanaryVerdict) -> str | None:
    """Carry the decision out (audited); the sentence that says what was done."""
    name, version = verdict.model, verdict.candidate.version
    reason = f"shipyard traffic check: {verdict.summary()}"[:1000]
    if verdict.decision == "rollback":
        c.traffic.rollback(name, actor=c.user, reason=reason, policy_id=verdict.policy_id)
        base = verdict.production.version
        return f"ended policy {verdict.policy_id}: production v{base} answers everything"
    if verdict.decision == "promote":
        current = c.traffic.current(name)
        if current is None or current.id != verdict.policy_id:
            raise InvalidTransition(
                f"{name}'s traffic policy {verdict.policy_id} is no longer in force; nothing "
                "was promoted. Run the check again."
            )
        c.registry.promote(name, version, actor=c.user, reason=reason)
        return f"promoted v{version} to production (the {verdict.kind} ended)"
    return None


def _print_verdict(verdict: CanaryVerdict, action: str | None) -> None:
    table(
        f"{verdict.kind} of {verdict.model} since {verdict.since:%Y-%m-%d %H:%M:%S} UTC",
        ["arm", "version", "requests", "refused", "error rate", "p50 ms", "p99 ms"],
        [
            (
                a.arm,
                a.version,
                a.requests,
                a.refused,
                a.error_rate,
                a.latency_p50_ms,
                a.latency_p99_ms,
            )
            for a in (verdict.production, verdict.candidate)
        ],
    )
    table(
        "Gates",
        ["gate", "status", "figures"],
        [(g.name, g.status, g.reason) for g in verdict.gates],
    )
    colour = {"promote": "green", "rollback": "red", "wait": "yellow"}[verdict.decision]
    console.print(
        f"Decision: [bold {colour}]{verdict.decision}[/] {verdict.candidate.name}"
        + (f"; {action}." if action else ".")
    )


def _history_table(name: str, history: list[Policy]) -> None:
    table(
        f"Traffic policy history of {name}",
        ["id", "at", "by", "kind", "policy", "reason"],
        [(p.id, p.created_at, p.created_by, p.kind, _row(p), p.reason) for p in history],
    )


def _none() -> str:
    return "no policy (production answers everything)"


def _row(policy: Policy) -> str:
    return policy.describe() if policy.active else "ended"
