"""``shipyard audit trace`` and ``shipyard audit served``: a prediction's lineage, and which
version served at a time, from the shell (the same read models as the web UI's pages)."""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli._admin_cmds import audit_app
from shipyard.cli._app import JsonOption, client, console, print_json
from shipyard.cli._predictions_cmds import LogDirOption, log_root


@audit_app.command("trace")
def audit_trace_cmd(
    ctx: typer.Context,
    prediction_id: str = typer.Argument(..., help="The prediction_id the server returned."),
    log_dir: Path = LogDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Trace a prediction: version, archive digest, run, commit, data, environment, input,
    output, traffic arm and label."""
    from shipyard.views import trace_prediction

    trace = trace_prediction(client(ctx, notify=False).store, log_root(ctx, log_dir), prediction_id)
    if as_json:
        print_json(trace.model_dump(mode="json"))
        return
    version = f"{trace.model} v{trace.version}" if trace.version is not None else trace.model
    rows: list[tuple[str, object]] = [
        ("prediction", trace.prediction_id),
        ("at", trace.at),
        ("model", version),
        ("arm", trace.arm or "-"),
        ("status", trace.status + (f": {trace.reason}" if trace.reason else "")),
        ("latency", f"{trace.latency_ms:.2f} ms" if trace.latency_ms is not None else "-"),
        ("input", ", ".join(f"{k}={v!r}" for k, v in trace.inputs.items()) or "-"),
        ("output", trace.prediction),
        ("probabilities", ", ".join(f"{k}: {v:.3f}" for k, v in trace.proba.items()) or "-"),
        ("labels", ", ".join(repr(label.label) for label in trace.labels) or "none yet"),
        ("archive digest", trace.digest or "unknown to this registry"),
    ]
    if trace.run is not None:
        git = trace.run.git
        code = "not a git repository"
        if git.commit:
            code = git.commit + (" (uncommitted changes)" if git.dirty else " (clean)")
        rows += [
            ("run", f"{trace.run.id} by {trace.run.user} ({trace.run.status})"),
            ("params", ", ".join(f"{k}={v}" for k, v in trace.run.params.items()) or "-"),
            ("commit", code),
            ("data", "; ".join(f"{d.name} {d.content_hash}" for d in trace.datasets) or "-"),
            ("environment", trace.environment.summary if trace.environment else "-"),
        ]
    elif trace.digest:
        rows.append(("run", "registered without a tracked run"))
    # Lines, not a table: digests and commits must print whole, never wrapped.
    for label, value in rows:
        console.print(f"{label:>15}  {value}", highlight=False, markup=False, soft_wrap=True)


@audit_app.command("served")
def audit_served_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    at: str = typer.Option(
        ..., "--at", help="The time, ISO 8601: 2026-12-01T10:00 (UTC) or with an offset."
    ),
    alias: str = typer.Option("production", "--alias", help="The alias to look at."),
    as_json: bool = JsonOption,
) -> None:
    """Which version an alias served at a time, since when, by whom and why, and the traffic
    policy in force then."""
    from shipyard.views import parse_at, served_at

    served = served_at(client(ctx, notify=False).store, name, parse_at(at), alias=alias)
    if as_json:
        print_json(served.model_dump(mode="json"))
        return
    console.print(served.message, highlight=False, markup=False)
    if served.version is not None and served.reason:
        console.print(f"Why: {served.reason}", highlight=False, markup=False)
