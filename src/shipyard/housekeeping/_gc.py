"""Retention: delete prediction-log partitions and monitoring results past their age."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select

from shipyard.audit import append_event
from shipyard.store import Store
from shipyard.store._models import MonitoringResult

_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


@dataclass
class GcReport:
    """What ``collect_garbage`` deleted (or, with ``dry_run``, would delete)."""

    partitions: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    monitoring_rows: int = 0
    dry_run: bool = False


def _expired_partitions(log_root: Path, cutoff: date) -> list[Path]:
    """``date=YYYY-MM-DD`` folders of predictions and feedback older than ``cutoff``.

    Only compacted Parquet partitions are considered: the write-ahead segments (``wal/``),
    which hold what is not compacted yet, are never touched.
    """
    found = []
    for kind in ("predictions", "feedback"):
        base = log_root / kind
        if not base.is_dir():
            continue
        for folder in base.rglob("date=*"):
            match = _DATE_DIR.match(folder.name)
            if folder.is_dir() and match and date.fromisoformat(match.group(1)) < cutoff:
                found.append(folder)
    return sorted(found)


def collect_garbage(
    store: Store,
    *,
    log_root: Path,
    predictions_older_than: timedelta | None,
    monitoring_older_than: timedelta | None,
    actor: str,
    dry_run: bool = False,
    now: datetime | None = None,
) -> GcReport:
    """Delete what is past retention; audited. A ``None`` age keeps that kind forever."""
    now = now or datetime.now(UTC)
    report = GcReport(dry_run=dry_run)
    if predictions_older_than is not None:
        cutoff = (now - predictions_older_than).date()
        for folder in _expired_partitions(log_root, cutoff):
            files = [p for p in folder.rglob("*") if p.is_file()]
            report.files += len(files)
            report.bytes += sum(p.stat().st_size for p in files)
            report.partitions.append(str(folder.relative_to(log_root)))
            if not dry_run:
                shutil.rmtree(folder)
    old = (
        MonitoringResult.window_end < now - monitoring_older_than
        if monitoring_older_than is not None
        else None
    )
    if dry_run:
        if old is not None:
            with store.read() as session:
                count = session.scalar(
                    select(func.count()).select_from(MonitoringResult).where(old)
                )
            report.monitoring_rows = int(count or 0)
        return report
    with store.write() as session:
        if old is not None:
            result = session.execute(delete(MonitoringResult).where(old))
            report.monitoring_rows = int(getattr(result, "rowcount", 0) or 0)
        append_event(
            session,
            actor=actor,
            action="gc.completed",
            subject="store",
            details={
                "partitions": len(report.partitions),
                "files": report.files,
                "bytes": report.bytes,
                "monitoring_rows": report.monitoring_rows,
            },
        )
    return report
