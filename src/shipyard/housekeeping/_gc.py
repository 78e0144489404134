"""Retention: delete prediction-log partitions, monitoring results and job runs past their age,
and (when asked) the archive files of archived versions no alias or traffic policy uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from shipyard.audit import append_event
from shipyard.errors import StoreUnavailable
from shipyard.predlog import Partition, delete_partition, expired_partitions, merge_id_indexes
from shipyard.registry import referenced_versions
from shipyard.store import Store
from shipyard.store.tables import Alias, JobRun, ModelVersion, MonitoringResult


@dataclass
class GcReport:
    """What ``collect_garbage`` deleted (or, with ``dry_run``, would delete)."""

    partitions: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    monitoring_rows: int = 0
    job_runs: int = 0
    artifacts: list[str] = field(default_factory=list)
    """``model vN`` of each archived version whose archive file was deleted."""
    artifact_bytes: int = 0
    dry_run: bool = False
    errors: list[str] = field(default_factory=list)
    """Files that could not be deleted after the commit (left behind, reported)."""
    id_index_days: list[str] = field(default_factory=list)
    """Days whose prediction-id index was merged into one file (days before today)."""


def collect_garbage(
    store: Store,
    *,
    log_root: Path | str,
    predictions_older_than: timedelta | None,
    monitoring_older_than: timedelta | None,
    actor: str,
    job_runs_older_than: timedelta | None = None,
    archived_artifacts: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
) -> GcReport:
    """Delete what is past retention; audited. A ``None`` age keeps that kind forever.

    ``log_root`` is the prediction log's folder (its Parquet beside it, or on the object
    store its ``store.json`` names) or the object store URL of its Parquet.

    With ``archived_artifacts``, also delete the archive files of archived versions, except
    those an alias points to or the current traffic policy of their model uses (an arm's
    version or the shadow). The version rows stay, so history and lineage remain.
    """
    now = now or datetime.now(UTC)
    report = GcReport(dry_run=dry_run)
    expired: list[Partition] = []
    if predictions_older_than is not None:
        cutoff = (now - predictions_older_than).date()
        expired = expired_partitions(log_root, cutoff)
        for partition in expired:
            report.files += partition.files
            report.bytes += partition.bytes
            report.partitions.append(partition.path)
    old = (
        MonitoringResult.window_end < now - monitoring_older_than
        if monitoring_older_than is not None
        else None
    )
    old_runs = (
        (JobRun.started_at < now - job_runs_older_than) & (JobRun.status != "running")
        if job_runs_older_than is not None
        else None
    )
    if dry_run:
        with store.read() as session:
            if old is not None:
                count = session.scalar(
                    select(func.count()).select_from(MonitoringResult).where(old)
                )
                report.monitoring_rows = int(count or 0)
            if old_runs is not None:
                count = session.scalar(select(func.count()).select_from(JobRun).where(old_runs))
                report.job_runs = int(count or 0)
            if archived_artifacts:
                _collect_archives(store, session, report)
        return report
    doomed: list[str] = []
    with store.write() as session:
        if old is not None:
            result = session.execute(delete(MonitoringResult).where(old))
            report.monitoring_rows = int(getattr(result, "rowcount", 0) or 0)
        if old_runs is not None:
            result = session.execute(delete(JobRun).where(old_runs))
            report.job_runs = int(getattr(result, "rowcount", 0) or 0)
        if archived_artifacts:
            for mv in _collect_archives(store, session, report):
                doomed.append(mv.archive_key)
                append_event(
                    session,
                    actor=actor,
                    action="version.artifacts_deleted",
                    subject=f"model:{mv.model_name}/{mv.version}",
                    details={"archive": mv.archive_key, "bytes": mv.size},
                )
        append_event(
            session,
            actor=actor,
            action="gc.completed",
            subject="store",
            details={
                "partitions": report.partitions,
                "files": report.files,
                "bytes": report.bytes,
                "monitoring_rows": report.monitoring_rows,
                "job_runs": report.job_runs,
                "artifacts": report.artifacts,
                "artifact_bytes": report.artifact_bytes,
            },
        )
    # After the commit: a failed transaction deletes nothing; a file that fails to go after
    # it is only left behind (the version was already unusable once archived).
    for partition in expired:
        try:
            delete_partition(log_root, partition)
        except (OSError, StoreUnavailable) as exc:
            report.errors.append(f"could not delete '{partition.path}': {exc}")
    for key in doomed:
        try:
            store.artifacts.delete(key)
        except OSError as exc:
            report.errors.append(f"could not delete the archive '{key}': {exc}")
    # The compactor merges past days' id index too; this covers a log no server writes now.
    try:
        merged = merge_id_indexes(log_root, now.date())
        report.id_index_days = [day.isoformat() for day in merged]
    except (OSError, StoreUnavailable) as exc:
        report.errors.append(f"could not merge the prediction-id index: {exc}")
    return report


def _collect_archives(store: Store, session: Session, report: GcReport) -> list[ModelVersion]:
    """Archived versions with an archive file that no alias or current policy uses."""
    protected = {(a.model_name, a.version) for a in session.scalars(select(Alias))}
    candidates = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.archived_at.is_not(None))
        .order_by(ModelVersion.model_name, ModelVersion.version)
    ).all()
    for name in {mv.model_name for mv in candidates}:
        protected.update((name, v) for v in referenced_versions(session, name))
    found = []
    for mv in candidates:
        if (mv.model_name, mv.version) in protected or not store.artifacts.exists(mv.archive_key):
            continue
        found.append(mv)
        report.artifacts.append(f"{mv.model_name} v{mv.version}")
        report.artifact_bytes += store.artifacts.size(mv.archive_key)
    return found
