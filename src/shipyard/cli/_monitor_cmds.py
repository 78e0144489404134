"""``shipyard monitor``: drift and data quality of a batch against a version's reference."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.text import Text

from shipyard.cli._app import JsonOption, app, client, console, print_json, project, table
from shipyard.cli._options import Engine
from shipyard.cli._predictions_cmds import LogDirOption, log_root
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.dataset import Profile, Schema
    from shipyard.monitoring import DriftAccumulator, DriftReport

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
        help="pandas (streams chunks, bounded memory) or spark (Spark aggregations, same scores).",
    ),
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
    labels sent with 'shipyard feedback', and service metrics (volume, errors, latency)."""
    from shipyard.alerting import AlertConfig
    from shipyard.cli._monitor_perf import print_sections
    from shipyard.config import parse_window
    from shipyard.dataset import Profile, Schema
    from shipyard.monitoring import (
        build_report,
        chunk_rows,
        file_chunks,
        performance_and_service,
        record_monitoring_run,
        window_chunks,
        window_report_html,
    )
    from shipyard.monitoring import label_delay as _label_delay

    alert_config = AlertConfig.from_project(project(ctx))  # a bad config fails before any work
    delay = _label_delay(label_delay, project(ctx).monitoring)
    c = client(ctx)
    loaded = c.load(model)
    reference = loaded.reference_profile["outputs" if outputs else "inputs"]
    schema = None if outputs else Schema.model_validate(loaded.manifest.input_schema)
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
        source = f"log:{window_start:%Y-%m-%dT%H:%M}..{window_end:%Y-%m-%dT%H:%M}"
    elif since is not None or until is not None:
        raise InvalidInput(
            "--since and --until select a log window; leave them out with --current."
        )
    else:
        source = str(current)
    profile = Profile.model_validate(reference)
    if engine is Engine.spark:
        log = (
            log_root(ctx, log_dir),
            loaded.name,
            loaded.version,
            window_start,
            window_end,
            outputs,
        )
        accumulator = _accumulate_with_spark(profile, schema, current, log, quiet=as_json)
    else:
        if window_start is not None and window_end is not None:
            total, chunks = window_chunks(
                log_root(ctx, log_dir),
                loaded.name,
                loaded.version,
                window_start,
                window_end,
                outputs=outputs,
                rows=chunk_rows(len(profile.columns)),
            )
        else:
            total, chunks = file_chunks(current, rows=chunk_rows(len(profile.columns)))
        accumulator = _accumulate(profile, schema, source, total, chunks, quiet=as_json)
    report = build_report(accumulator)
    if report.n_rows == 0:
        raise InvalidInput(f"'{source}' has no rows: there is nothing to compare.")
    performance = service = None
    extra: list[Any] = []
    if window_start is not None and window_end is not None:
        performance, service, extra = performance_and_service(
            loaded, log_root(ctx, log_dir), window_start, window_end, delay
        )

    def write_report() -> Path | None:
        if report_path is None:
            return None
        html = window_report_html(
            c.store, loaded, report, profile, accumulator, source, performance, service
        )
        try:
            report_path.write_text(html, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"Cannot write the report to '{report_path}': {exc}") from exc
        if not as_json:
            console.print(f"Report: {report_path.absolute()}")
        return report_path

    recorded = record_monitoring_run(
        c.store,
        report,
        model=loaded.name,
        version=loaded.version,
        actor=c.user,
        source=f"{'outputs' if outputs else 'inputs'}:{source}",
        window_start=window_start,
        window_end=window_end,
        alert_config=alert_config,
        extra=extra,
        write_report=write_report,
    )
    alert_records = recorded.alerts
    if as_json:
        print_json(
            {
                "model": loaded.name,
                "version": loaded.version,
                **report.model_dump(mode="json"),
                "performance": performance.model_dump(mode="json") if performance else None,
                "service": service.model_dump(mode="json") if service else None,
            }
        )
    else:
        _print_report(report, f"{loaded.name} v{loaded.version}")
        if service is not None:
            print_sections(performance, service)
        for record in alert_records:
            sent = ", ".join(
                f"{k}: {'ok' if v['ok'] else v['error']}" for k, v in record.deliveries.items()
            )
            console.print(
                f"Alert {record.id} ({record.rule}, {record.status}): {record.message} {sent}"
            )
    extra_metrics = {row.metric for row in extra}
    if report.drifted or report.flagged() or any(r.metric in extra_metrics for r in alert_records):
        raise typer.Exit(1)  # a performance or service rule counts as a breach too


def _progress(quiet: bool) -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet,
    )


def _accumulate(
    profile: Profile,
    schema: Schema | None,
    source: str,
    total: int | None,
    chunks: Iterator[Any],
    *,
    quiet: bool,
) -> DriftAccumulator:
    """Stream the chunks into the accumulator, with a progress bar over rows."""
    from shipyard.monitoring import DriftAccumulator

    accumulator = DriftAccumulator(profile, schema=schema)
    with _progress(quiet) as progress:
        task = progress.add_task(f"Checking {source}", total=total)
        for chunk in chunks:
            accumulator.update(chunk)
            progress.advance(task, len(chunk))
    return accumulator


def _accumulate_with_spark(
    profile: Profile,
    schema: Schema | None,
    current: Path | None,
    log: tuple[Path, str, int, datetime | None, datetime | None, bool],
    *,
    quiet: bool,
) -> DriftAccumulator:
    """The same counts by Spark aggregations, with a progress bar over Spark jobs."""
    from shipyard.monitoring import (
        read_spark_table,
        spark_accumulate,
        spark_errors,
        spark_jobs,
        spark_message,
        spark_session,
        spark_window,
    )

    root, name, version, start, end, outputs = log
    with spark_session() as spark:
        if current is not None:
            df = read_spark_table(spark, current)
        else:
            assert start is not None and end is not None
            df = spark_window(spark, root, name, version, start, end, outputs=outputs)
        with _progress(quiet) as progress:
            task = progress.add_task("Spark aggregations", total=spark_jobs(profile, df, schema))
            try:
                return spark_accumulate(
                    profile, df, schema=schema, on_job=lambda: progress.advance(task)
                )
            except spark_errors() as exc:
                message = spark_message(exc)
                raise InvalidInput(f"Spark could not read the data: {message}") from exc


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
