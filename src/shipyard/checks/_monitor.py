"""One monitoring run of one model version over one window, from the registry to the alerts.

``monitor_window`` is the pipeline behind ``shipyard monitor run`` and the scheduler's
``monitor`` jobs: read ``[[alerts]]`` and the label delay (a bad config fails before any work),
open the version's archive (its reference profile and schema: the model is not unpickled, as
no step calls it), count the window (a file, or the prediction log's ``[start, end)``) into
the drift accumulator on the request's engine (pandas chunks, Spark or Dask), build the drift
and quality report, add performance and service over a log window, save it all as one run,
write the HTML report, and raise the alerts the rules fire. Over a log window of a classifier
whose archive has eval outputs, performance is also estimated without labels (CBPE, stored as
``estimated_<metric>``, which alert rules can name like any metric).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.checks._record import record_monitoring_run
from shipyard.checks._sections import label_delay, performance_and_service, window_report_html
from shipyard.dataset import Profile, Schema
from shipyard.engines import Engine, LoggedWindow, engine_for
from shipyard.errors import InvalidInput
from shipyard.monitoring import (
    DriftAccumulator,
    DriftReport,
    MetricRow,
    PerformanceEstimate,
    PerformanceReport,
    Progress,
    ServiceReport,
    build_report,
)
from shipyard.registry import Registry
from shipyard.store import Store

if TYPE_CHECKING:
    from shipyard.config import ProjectConfig


@dataclass(frozen=True)
class MonitorRequest:
    """What to monitor: a model reference and a window, either ``current`` (a Parquet or CSV
    file) or the prediction log under ``log_root`` in ``[start, end)`` (UTC).

    ``outputs`` checks the model's outputs (prediction drift) instead of its inputs;
    ``report`` is the HTML report to write; ``label_delay`` (``0``, ``1h``...) overrides
    ``label_delay`` of ``[monitoring]`` in ``project`` (the parsed shipyard.toml, which also
    holds the ``[[alerts]]`` rules). ``actor`` is who the stored run and its audit event name.
    ``engine`` counts the window: a name (``pandas``, ``spark``, ``dask``) or an ``Engine``
    (e.g. ``DaskEngine(scheduler="tcp://10.0.0.5:8786")``).

    >>> from shipyard.config import ProjectConfig
    >>> MonitorRequest("churn@production", actor="cron", project=ProjectConfig(),
    ...                log_root=Path("predictions"), current=Path("batch.parquet")).source
    'batch.parquet'
    """

    model: str
    actor: str
    project: ProjectConfig
    log_root: Path
    current: Path | None = None
    start: datetime | None = None
    end: datetime | None = None
    outputs: bool = False
    report: Path | None = None
    engine: str | Engine = "pandas"
    label_delay: str | None = None

    @property
    def source(self) -> str:
        """The window's name: the file, or ``log:<start>..<end>`` to the minute."""
        if self.current is not None:
            return str(self.current)
        return f"log:{self.start:%Y-%m-%dT%H:%M}..{self.end:%Y-%m-%dT%H:%M}"

    def check(self) -> None:
        """Raise ``InvalidInput`` unless exactly one window is given: a file or a log window."""
        file_only = self.current is not None and self.start is None and self.end is None
        log_only = self.current is None and self.start is not None and self.end is not None
        if not (file_only or log_only):
            raise InvalidInput(
                "Monitor either a file (current) or a log window (both start and end)."
            )


@dataclass
class MonitorResult:
    """What one run found and kept: the reports, the stored run, the report file, the alerts."""

    model: str
    version: int
    source: str
    report: DriftReport
    performance: PerformanceReport | None
    service: ServiceReport | None
    run_id: str
    report_path: Path | None = None
    alerts: list[Any] = field(default_factory=list)
    """The alert records raised (rule, status, message, deliveries)."""
    extra_metrics: frozenset[str] = frozenset()
    """The performance and service metrics stored besides drift and quality."""
    estimate: PerformanceEstimate | None = None
    """The label-free performance estimate of a log window (CBPE)."""
    estimate_note: str | None = None
    """Why there is no estimate (a regressor, no eval outputs in the archive...)."""

    @property
    def breached(self) -> bool:
        """Drift, a data-quality breach, or an alert on a performance or service metric."""
        return bool(
            self.report.drifted
            or self.report.flagged()
            or any(a.metric in self.extra_metrics for a in self.alerts)
        )


def monitor_window(
    store: Store, request: MonitorRequest, *, progress: Progress | None = None
) -> MonitorResult:
    """Run the monitoring pipeline of the module docstring for ``request``.

    Raises ``NotFound`` for an unknown model or an empty log window, ``InvalidInput`` for a
    bad config, file or window, or a window with no rows. When the HTML report cannot be
    written, the alerts are still raised before the error propagates.

    >>> result = monitor_window(store, request)  # doctest: +SKIP
    >>> result.breached, result.run_id  # doctest: +SKIP
    (False, '3f2a...')
    """
    from shipyard.alerting import AlertConfig

    request.check()
    alert_config = AlertConfig.from_project(request.project)
    delay = label_delay(request.label_delay, request.project.monitoring)
    archive = Registry(store).open_archive(request.model)
    name, version = archive.manifest.name, archive.manifest.version
    kind = "outputs" if request.outputs else "inputs"
    reference = Profile.model_validate(archive.reference_profile[kind])
    schema = None if request.outputs else archive.schema
    source = request.source
    log_window = None
    if request.start is not None and request.end is not None:
        log_window = (request.log_root, name, version, request.start, request.end)
    accumulator = _accumulate(request, reference, schema, log_window, progress)
    report = build_report(accumulator)
    if report.n_rows == 0:
        raise InvalidInput(f"'{source}' has no rows: there is nothing to compare.")
    performance = service = estimate = estimate_note = None
    extra: list[MetricRow] = []
    if log_window is not None:
        root, _, _, start, end = log_window
        sections = performance_and_service(archive, root, start, end, delay)
        performance, service, extra = sections.performance, sections.service, sections.rows
        estimate, estimate_note = sections.estimate, sections.estimate_note

    def write_report() -> Path | None:
        path = request.report
        if path is None:
            return None
        html = window_report_html(
            store,
            archive,
            report,
            reference,
            accumulator,
            source,
            performance,
            service,
            estimate,
            estimate_note,
        )
        try:
            path.write_text(html, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"Cannot write the report to '{path}': {exc}") from exc
        return path

    recorded = record_monitoring_run(
        store,
        report,
        model=name,
        version=version,
        actor=request.actor,
        source=f"{kind}:{source}",
        window_start=request.start,
        window_end=request.end,
        alert_config=alert_config,
        extra=extra,
        write_report=write_report,
    )
    return MonitorResult(
        model=name,
        version=version,
        source=source,
        report=report,
        performance=performance,
        service=service,
        run_id=recorded.run_id,
        report_path=recorded.report_path,
        alerts=list(recorded.alerts),
        extra_metrics=frozenset(row.metric for row in extra),
        estimate=estimate,
        estimate_note=estimate_note,
    )


def _accumulate(
    request: MonitorRequest,
    reference: Profile,
    schema: Schema | None,
    log_window: tuple[Path, str, int, datetime, datetime] | None,
    progress: Progress | None,
) -> DriftAccumulator:
    """The window's counts, by the request's engine (the pandas engine streams chunks, so
    memory stays bounded however long the window; Spark and Dask count on their clusters)."""
    engine = engine_for(request.engine) if isinstance(request.engine, str) else request.engine
    source: Path | LoggedWindow
    if log_window is not None:
        source = LoggedWindow(*log_window, outputs=request.outputs)
    else:
        assert request.current is not None
        source = request.current
    return engine.count(reference, source, schema=schema, progress=progress)
