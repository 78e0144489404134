"""One monitoring run kept: its report stored as results, then the alert rules evaluated on it.

``monitor_window`` ends with ``record_monitoring_run``: the report's rows are saved as one run
(audited), an optional HTML report is written (it may read the run just saved), and the
``[[alerts]]`` rules fire on the stored rows, sending and storing their alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from shipyard.monitoring import DriftReport, MetricRow, MonitoringResults
from shipyard.store import Store
from shipyard.store.tables import AlertRecord, MonitoringResult

if TYPE_CHECKING:  # alerting loads its channels (SMTP, HTTP) only when rules fire
    from shipyard.alerting import AlertConfig


@dataclass
class RecordedRun:
    """What ``record_monitoring_run`` kept: the run id, the report's path, the alerts raised."""

    run_id: str
    report_path: Path | None = None
    alerts: list[AlertRecord] = field(default_factory=list)


def record_monitoring_run(
    store: Store,
    report: DriftReport,
    *,
    model: str,
    version: int,
    actor: str,
    source: str,
    window_start: datetime | None,
    window_end: datetime | None,
    alert_config: AlertConfig,
    extra: Sequence[MetricRow] = (),
    write_report: Callable[[], Path | None] | None = None,
) -> RecordedRun:
    """Save ``report`` (plus ``extra`` rows) as one run, write the HTML report, raise alerts.

    ``write_report`` runs after the save (so the report can show the stored series) and
    returns the written file, linked from the alerts. If it raises, the alerts are still
    evaluated and sent (without a link) before its exception propagates: a report that cannot
    be written never hides a breach.
    """
    run_id = MonitoringResults(store).save(
        report,
        model=model,
        version=version,
        actor=actor,
        source=source,
        window_start=window_start,
        window_end=window_end,
        extra=extra,
    )
    recorded = RecordedRun(run_id=run_id)
    error: Exception | None = None
    if write_report is not None:
        try:
            recorded.report_path = write_report()
        except Exception as exc:  # re-raised below, after the alerts
            error = exc
    if alert_config.rules:
        from shipyard.alerting import Alerts, evaluate

        with store.read() as session:
            rows = session.scalars(
                select(MonitoringResult).where(MonitoringResult.run_id == run_id)
            ).all()
        link = str(recorded.report_path.absolute()) if recorded.report_path else None
        fired = evaluate(alert_config.rules, rows, link=link, store=store)
        recorded.alerts = Alerts(store).raise_all(fired, alert_config.channels, actor=actor)
    if error is not None:
        raise error
    return recorded
