"""``shipyard monitor``: drift and data quality of a batch against a version's reference."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from shipyard.cli._app import JsonOption, app, client, console, print_json, table
from shipyard.cli._io import iter_table_chunks
from shipyard.cli._predictions_cmds import LogDirOption, log_root
from shipyard.dataset import Profile, Schema
from shipyard.errors import InvalidInput
from shipyard.monitoring import (
    DriftAccumulator,
    DriftReport,
    MonitoringResults,
    build_report,
    logged_window,
    parse_window,
    render_html,
)
from shipyard.settings import Settings

monitor_app = typer.Typer(
    help="Input drift and data quality against the training data.", no_args_is_help=True
)
app.add_typer(monitor_app, name="monitor")


@monitor_app.command("run")
def monitor_run_cmd(
    model: str = typer.Argument(..., help="Model reference: churn, churn@staging, churn:3."),
    current: Path = typer.Option(
        None,
        "--current",
        help="Check this batch (Parquet or CSV) instead of the prediction "
        "log, e.g. before scoring it.",
    ),
    window: str = typer.Option("1d", help="Log window ending at --until: 30m, 12h, 1d, 7d."),
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
    as_json: bool = JsonOption,
) -> None:
    """Compare a batch with the version's reference profile; exit 1 on drift or a quality
    breach (so cron and CI can act on it)."""
    from shipyard.alerting import load_alert_config

    alert_config = load_alert_config(Settings().config)  # a bad config fails before any work
    c = client()
    loaded = c.load(model)
    reference = loaded.reference_profile["outputs" if outputs else "inputs"]
    schema = None if outputs else Schema.model_validate(loaded.manifest.input_schema)
    window_start = window_end = None
    if current is None:
        window_end = datetime.now(UTC) if until is None else until.replace(tzinfo=UTC)
        window_start = window_end - parse_window(window)
        frame = logged_window(
            log_root(log_dir),
            loaded.name,
            loaded.version,
            window_start,
            window_end,
            outputs=outputs,
        )
        total, chunks = len(frame), iter([frame])
        source = f"log:{window_start:%Y-%m-%dT%H:%M}..{window_end:%Y-%m-%dT%H:%M}"
    else:
        total, chunks = iter_table_chunks(current)
        source = str(current)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as progress:
        task = progress.add_task(f"Checking {source}", total=total)

        def counted() -> Iterator[Any]:
            for chunk in chunks:
                yield chunk
                progress.advance(task, len(chunk))

        accumulator = DriftAccumulator(Profile.model_validate(reference), schema=schema)
        for chunk in counted():
            accumulator.update(chunk)
        report = build_report(accumulator)
    if report.n_rows == 0:
        raise InvalidInput(f"'{source}' has no rows: there is nothing to compare.")
    run_id = MonitoringResults(c.store).save(
        report,
        model=loaded.name,
        version=loaded.version,
        actor=c.user,
        source=f"{'outputs' if outputs else 'inputs'}:{source}",
        window_start=window_start,
        window_end=window_end,
    )
    if report_path is not None:
        html = render_html(
            report,
            Profile.model_validate(reference),
            states=accumulator.states,
            title=f"{loaded.name} v{loaded.version}: {source}",
            window=source,
        )
        try:
            report_path.write_text(html, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"Cannot write the report to '{report_path}': {exc}") from exc
        if not as_json:
            console.print(f"Report: {report_path.absolute()}")
    alert_records = _raise_alerts(c, alert_config, run_id, report_path)
    if as_json:
        print_json(
            {"model": loaded.name, "version": loaded.version, **report.model_dump(mode="json")}
        )
    else:
        _print_report(report, f"{loaded.name} v{loaded.version}")
        for record in alert_records:
            sent = ", ".join(
                f"{k}: {'ok' if v['ok'] else v['error']}" for k, v in record.deliveries.items()
            )
            console.print(
                f"Alert {record.id} ({record.rule}, {record.status}): {record.message} {sent}"
            )
    if report.drifted or report.flagged():
        raise typer.Exit(1)


def _raise_alerts(c: Any, config: Any, run_id: str, report_path: Path | None) -> list[Any]:
    """Evaluate the rules of shipyard.toml on this run's stored rows; send and store alerts."""
    from sqlalchemy import select

    from shipyard.alerting import Alerts, evaluate
    from shipyard.store._models import MonitoringResult

    if not config.rules:
        return []
    with c.store.read() as session:
        rows = session.scalars(
            select(MonitoringResult).where(MonitoringResult.run_id == run_id)
        ).all()
    link = str(report_path.absolute()) if report_path else None
    fired = evaluate(config.rules, rows, link=link)
    return Alerts(c.store).raise_all(fired, config.channels, actor=c.user)


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
                "[red]drift[/]" if f.drifted else "[green]ok[/]",
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
    c = client()
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
