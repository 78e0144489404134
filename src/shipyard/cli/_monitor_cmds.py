"""``shipyard monitor``: drift and data quality of a batch against a version's reference."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.text import Text

from shipyard.cli._app import (
    JsonOption,
    app,
    client,
    console,
    print_json,
    project,
    row_progress,
    settings,
    table,
)
from shipyard.cli._options import Engine
from shipyard.cli._predictions_cmds import LogDirOption, log_root
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.checks import AlertRetrain, MonitorRequest
    from shipyard.engines import Engine as EngineRunner
    from shipyard.monitoring import DriftReport
    from shipyard.monitoring import Progress as ProgressDisplay
    from shipyard.store import Store

DASK_SCHEDULER_HELP = (
    "With --engine dask: the scheduler's address (tcp://host:8786). Default: "
    "SHIPYARD_DASK_SCHEDULER, else a local cluster of worker processes for this command."
)
#: ``--dask-scheduler``, shared by ``monitor run`` and ``score``.
DaskSchedulerOption: Any = typer.Option(None, "--dask-scheduler", help=DASK_SCHEDULER_HELP)

monitor_app = typer.Typer(
    help="Input drift and data quality against the training data.", no_args_is_help=True
)
app.add_typer(monitor_app, name="monitor")


@monitor_app.command("run")
def monitor_run_cmd(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model reference: churn, churn@staging, churn:3."),
    current: Path = typer.Option(
        None,
        "--current",
        help="Check this batch (Parquet or CSV) instead of the prediction "
        "log, e.g. before scoring it.",
    ),
    window: str = typer.Option("1d", help="Log window ending at --until: 30m, 12h, 1d, 7d."),
    since: datetime = typer.Option(
        None, help="Start of the log window (UTC), instead of --window: 2026-11-01T00:00."
    ),
    until: datetime = typer.Option(None, help="End of the log window (UTC; default: now)."),
    log_dir: Path = LogDirOption,
    outputs: bool = typer.Option(
        False,
        "--outputs",
        help="Check prediction drift: the file holds the model's outputs "
        "(prediction, proba_<class>) instead of its inputs.",
    ),
    report_path: Path = typer.Option(
        None, "--report", help="Also write a self-contained HTML report (Plotly, offline) here."
    ),
    engine: Engine = typer.Option(
        Engine.pandas,
        help="pandas (streams chunks, bounded memory), spark (Spark aggregations) or dask (a "
        "Dask cluster: local, or --dask-scheduler); every engine gives the same scores.",
    ),
    dask_scheduler: str = DaskSchedulerOption,
    label_delay: str = typer.Option(
        None,
        "--label-delay",
        help="Predictions younger than this are not expected to have labels yet (label "
        "coverage): 0, 30m, 1h, 1d. Default: label_delay in [monitoring] of shipyard.toml, or 0.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Compare a batch with the version's reference profile; exit 1 on drift or a quality
    breach (so cron and CI can act on it). A log window also gets performance against the
    labels sent with 'shipyard feedback', a label-free estimate of it (CBPE, for classifiers
    registered with eval data), and service metrics (volume, errors, latency)."""
    from shipyard.checks import MonitorRequest, monitor_window
    from shipyard.cli._monitor_perf import print_estimate, print_sections
    from shipyard.config import parse_window

    window_start = window_end = None
    if current is None:
        window_end = datetime.now(UTC) if until is None else until.replace(tzinfo=UTC)
        if since is None:
            window_start = window_end - parse_window(window)
        else:
            window_start = since.replace(tzinfo=UTC)
            if window_start >= window_end:
                raise InvalidInput(
                    f"--since ({window_start:%Y-%m-%dT%H:%M:%S}) must be before --until "
                    f"({window_end:%Y-%m-%dT%H:%M:%S}); both are UTC."
                )
    elif since is not None or until is not None:
        raise InvalidInput(
            "--since and --until select a log window; leave them out with --current."
        )
    c = client(ctx)
    request = MonitorRequest(
        model,
        actor=c.user,
        project=project(ctx),
        log_root=log_root(ctx, log_dir),
        current=current,
        start=window_start,
        end=window_end,
        outputs=outputs,
        report=report_path,
        engine=_engine(ctx, engine, dask_scheduler),
        label_delay=label_delay,
    )
    result = monitor_window(c.store, request, progress=progress_bar(quiet=as_json))
    retrains = _retrain_on_alerts(ctx, c.store, result.alerts, request)
    report, performance, service = result.report, result.performance, result.service
    if as_json:
        print_json(
            {
                "model": result.model,
                "version": result.version,
                **report.model_dump(mode="json"),
                "performance": performance.model_dump(mode="json") if performance else None,
                "service": service.model_dump(mode="json") if service else None,
                "estimate": result.estimate.model_dump(mode="json") if result.estimate else None,
                "estimate_note": result.estimate_note,
                "retrains": [outcome.to_json() for outcome in retrains],
            }
        )
    else:
        if result.report_path is not None:
            console.print(f"Report: {result.report_path.absolute()}")
        _print_report(report, f"{result.model} v{result.version}")
        if service is not None:
            print_sections(performance, service)
            print_estimate(result.estimate, result.estimate_note, performance)
        for record in result.alerts:
            sent = ", ".join(
                f"{k}: {'ok' if v['ok'] else v['error']}" for k, v in record.deliveries.items()
            )
            console.print(
                f"Alert {record.id} ({record.rule}, {record.status}): {record.message} {sent}"
            )
        for outcome in retrains:
            console.print(f"Retrain ({outcome.status}): {outcome.message}")
    if result.breached:
        raise typer.Exit(1)  # a performance or service rule counts as a breach too


def _retrain_on_alerts(
    ctx: typer.Context, store: Store, alerts: list[Any], request: MonitorRequest
) -> list[AlertRetrain]:
    """The retrainings the alerts ask for (``action = "retrain"``, ``on_drift``), started
    once the monitoring run is stored; reported, never raised."""
    from shipyard.checks import retrain_on_alerts

    return retrain_on_alerts(
        store,
        alerts,
        actor=request.actor,
        project=request.project,
        log_root=request.log_root,
        report_dir=settings(ctx).home.expanduser().absolute() / "reports",
    )


def _engine(ctx: typer.Context, engine: Engine, dask_scheduler: str | None) -> EngineRunner:
    from shipyard.engines import engine_for

    return engine_for(engine.value, dask_scheduler=dask_scheduler or settings(ctx).dask_scheduler)


def progress_bar(*, quiet: bool) -> ProgressDisplay:
    """Rich's transient bar, one per call of the returned progress (hidden when quiet)."""

    @contextmanager
    def bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        with row_progress(quiet=quiet) as progress:
            task = progress.add_task(description, total=total)
            yield lambda n: progress.advance(task, n)

    return bar


def _print_report(report: DriftReport, label: str) -> None:
    rows = []
    for f in sorted(report.features, key=lambda f: not (f.drifted or f.quality_breached)):
        deciding = next((s for s in f.scores if s.name == f.test), None)
        breaches = [q.name for q in f.quality if q.breached]
        rows.append(
            (
                f.name,
                f.kind,
                f.test or "-",
                f"{deciding.value:.4g}" if deciding else "",
                f"{deciding.threshold:.4g}" if deciding else "",
                Text("drift", style="red") if f.drifted else Text("ok", style="green"),
                ", ".join(breaches) or "ok",
            )
        )
    table(
        f"Drift of {label}: {report.n_rows:,} rows vs {report.n_reference_rows:,} reference",
        ["feature", "type", "test", "score", "threshold", "drift", "quality"],
        rows,
    )
    flagged = report.flagged()
    verdict = (
        f"[red]{len(flagged)} feature(s) flagged: {', '.join(flagged)}[/]"
        if flagged
        else "[green]No drift and no data-quality breach.[/]"
    )
    console.print(f"{verdict} ({report.elapsed_seconds:.2f} s)")


@monitor_app.command("history")
def monitor_history_cmd(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model name."),
    metric: str = typer.Option(
        "drift_share",
        help="psi, ks, wasserstein, drift, quality.missing, drift_share (dataset), rows...",
    ),
    feature: str = typer.Option(None, help="Feature name ('*' for dataset-level metrics)."),
    version: int = typer.Option(None, help="Only this version."),
    limit: int = typer.Option(100, min=1, max=100_000),
    as_json: bool = JsonOption,
) -> None:
    """A metric's values over past monitoring runs, oldest first."""
    from shipyard.monitoring import MonitoringResults

    c = client(ctx, notify=False)
    c.registry.get_model(model)
    rows = [
        {
            "window_end": r.window_end,
            "version": r.version,
            "feature": r.feature,
            "metric": r.metric,
            "value": r.value,
            "threshold": r.threshold,
            "flagged": r.flagged,
            "rows": r.rows,
            "source": r.source,
        }
        for r in MonitoringResults(c.store).history(
            model, metric=metric, feature=feature, version=version, limit=limit
        )
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(f"No '{metric}' results for {model} yet: run 'shipyard monitor run'.")
        return
    table(
        f"{model}: {metric}",
        ["window end", "version", "feature", "value", "threshold", "flagged", "rows"],
        [
            (
                r["window_end"],
                r["version"],
                r["feature"],
                r["value"],
                r["threshold"],
                "yes" if r["flagged"] else "",
                r["rows"],
            )
            for r in rows
        ],
    )
