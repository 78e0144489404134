"""System health: the disk the store and the prediction log take, and each server's process,
gathered for ``shipyard status`` and judged by the ``[[alerts]]`` rules like any metric.

``system_health(store, log_root=..., servers=[...])`` measures the database
(``database_bytes``), the artifact store (``artifact_space``), the log's WAL backlog and
Parquet (``log_space``), and scrapes each server's ``/metrics`` (memory, CPU, open files,
the log's queue). Its ``metrics()`` name each figure as the servers' ``/metrics`` do, so one
rule reads the same name in Prometheus and here::

    [[alerts]]
    name = "log-backlog"
    metric = "shipyard_prediction_log_wal_bytes"
    threshold = 1e9                 # 1 GB not yet compacted
    severity = "critical"
    channels = ["oncall"]

    [[alerts]]
    name = "server-memory"
    metric = "process_resident_memory_bytes"
    feature = "*"                   # any server; or one server's URL
    threshold = 4e9

``system_alerts(health, rules)`` are the alerts those rules raise (model ``_system``);
``shipyard status --alert`` sends and stores them with the rules' channels and cool-downs.

>>> health = system_health(store, log_root=Path("predictions"),
...                        servers=["http://127.0.0.1:8000"])  # doctest: +SKIP
>>> health.metrics()[:2]  # doctest: +SKIP
[('shipyard_database_bytes', '*', 1638400.0), ('shipyard_artifacts_bytes', '*', 48211230.0)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from shipyard.alerting import Alert, AlertRule
from shipyard.predlog import LogSpace, log_space
from shipyard.store import Store, artifact_space, database_bytes
from shipyard.store.tables import MonitoringResult

#: The model name system alerts are raised under (no registered model has a leading '_').
SYSTEM_MODEL = "_system"

#: What ``ServerHealth`` reads from a server's ``/metrics`` (sample name -> field).
_SCRAPED = {
    "process_resident_memory_bytes": "memory_bytes",
    "process_cpu_seconds_total": "cpu_seconds",
    "process_open_fds": "open_fds",
    "process_start_time_seconds": "started_at",
    "shipyard_prediction_log_queue_depth": "log_queue_depth",
    "shipyard_prediction_log_lag_seconds": "log_lag_seconds",
    "shipyard_server_processes": "processes",
}
#: The whole server's figures (all its ``--workers``), read over the answering process's.
_SERVER_TOTALS = {
    "shipyard_server_resident_memory_bytes": "memory_bytes",
    "shipyard_server_cpu_seconds_total": "cpu_seconds",
}


@dataclass
class ServerHealth:
    """One server's process and log queue, from its ``/metrics`` (``error`` if unreachable)."""

    url: str
    error: str | None = None
    memory_bytes: float | None = None
    cpu_seconds: float | None = None
    processes: float | None = None
    open_fds: float | None = None
    started_at: float | None = None
    log_queue_depth: float | None = None
    log_lag_seconds: float | None = None
    requests: float | None = None


@dataclass
class SystemHealth:
    """Everything ``shipyard status`` shows (``to_json`` for ``--json``)."""

    database_url: str  # without its password
    database_bytes: int | None
    artifacts_url: str
    artifact_files: int | None
    artifact_bytes: int | None
    log: LogSpace
    servers: list[ServerHealth] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def metrics(self) -> list[tuple[str, str, float]]:
        """(metric, feature, value) for the rules: each named as in a server's ``/metrics``;
        the feature is ``*`` for the store and the log, the server's URL for a server."""
        out: list[tuple[str, str, float]] = []

        def add(name: str, value: float | None, feature: str = "*") -> None:
            if value is not None:
                out.append((name, feature, float(value)))

        add("shipyard_database_bytes", self.database_bytes)
        add("shipyard_artifacts_bytes", self.artifact_bytes)
        add("shipyard_artifacts_files", self.artifact_files)
        add("shipyard_prediction_log_wal_segments", self.log.wal_segments)
        add("shipyard_prediction_log_wal_bytes", self.log.wal_bytes)
        add("shipyard_prediction_log_wal_oldest_seconds", self.log.wal_oldest_seconds)
        add("shipyard_prediction_log_parquet_files", self.log.parquet_files)
        add("shipyard_prediction_log_parquet_bytes", self.log.parquet_bytes)
        for server in self.servers:
            for sample, name in _SCRAPED.items():
                add(sample, getattr(server, name), server.url)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "database": {"url": self.database_url, "bytes": self.database_bytes},
            "artifacts": {
                "url": self.artifacts_url,
                "files": self.artifact_files,
                "bytes": self.artifact_bytes,
            },
            "log": self.log.to_json(),
            "servers": [asdict(s) for s in self.servers],
            "errors": self.errors,
        }


def system_health(
    store: Store,
    *,
    log_root: Path | str,
    servers: Sequence[str] = (),
    timeout: float = 2.0,
) -> SystemHealth:
    """Measure the store, the log under ``log_root`` and each server now.

    A part that cannot be measured (the object store refuses a listing, a server does not
    answer) is reported in ``errors`` (or the server's ``error``), never raised.
    """
    errors: list[str] = []
    try:
        db_size = database_bytes(store)
    except Exception as exc:  # reported, not raised: status must show the rest
        db_size = None
        errors.append(f"Cannot size the database: {type(exc).__name__}.")
    try:
        files, size = artifact_space(store)
    except Exception as exc:
        files = size = None  # type: ignore[assignment]
        errors.append(f"Cannot list the artifact store: {type(exc).__name__}: {exc}"[:300])
    return SystemHealth(
        database_url=make_url(store.db_url).render_as_string(hide_password=True),
        database_bytes=db_size,
        artifacts_url=store.artifacts_url,
        artifact_files=files,
        artifact_bytes=size,
        log=log_space(log_root),
        servers=[scrape_server(url, timeout=timeout) for url in servers],
        errors=errors,
    )


def scrape_server(url: str, *, timeout: float = 2.0) -> ServerHealth:
    """A server's health from ``<url>/metrics`` (parsed with prometheus-client's parser)."""
    health = ServerHealth(url=url.rstrip("/"))
    try:
        response = httpx.get(f"{health.url}/metrics", timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        health.error = f"{type(exc).__name__}: {exc}"[:300]
        return health
    requests = 0.0
    totals: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                name = _SCRAPED.get(sample.name)
                if name is not None:
                    setattr(health, name, sample.value)
                elif sample.name in _SERVER_TOTALS:
                    totals[_SERVER_TOTALS[sample.name]] = sample.value
                elif sample.name == "shipyard_requests_total":
                    requests += sample.value
    except ValueError as exc:
        health.error = f"Not Prometheus metrics: {exc}"[:300]
        return health
    for name, value in totals.items():
        setattr(health, name, value)
    health.requests = requests
    return health


def system_alerts(
    health: SystemHealth, rules: Iterable[AlertRule]
) -> list[tuple[AlertRule, Alert]]:
    """The alerts ``rules`` raise on ``health``'s figures (latest values; a rule's ``window``
    is not applied: system figures are not stored)."""
    figures = health.metrics()
    out = []
    for rule in rules:
        for metric, feature, value in figures:
            row = MonitoringResult(
                metric=metric, feature=feature, value=value, flagged=False, threshold=None
            )
            if not rule.fires(row):
                continue
            limit = rule.threshold if rule.threshold is not None else rule.below
            where = "" if feature == "*" else f" on {feature}"
            side = "above" if rule.threshold is not None else "below"
            out.append(
                (
                    rule,
                    Alert(
                        rule=rule.name,
                        severity=rule.severity,
                        model=SYSTEM_MODEL,
                        version=0,
                        metric=metric,
                        feature=None if feature == "*" else feature,
                        value=value,
                        threshold=float(limit or 0.0),
                        message=f"{metric}{where} is {value:.4g}, {side} the limit "
                        f"{float(limit or 0.0):.4g}.",
                    ),
                )
            )
    return out
