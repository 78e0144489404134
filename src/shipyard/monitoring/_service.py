"""Service metrics of a window of the prediction log: volume, refusals and latency, per version
and per arm.

The log keeps one record per prediction (a request of 50 rows gives 50 records with the same
time stamp and latency) and one per refused request. Requests are therefore rebuilt as the
records sharing version, arm, status, time stamp and latency: ``requests`` counts them,
``predictions`` counts rows. ``error_rate`` is refused requests / all requests, overall and per
reason (the ``reason_limit`` most frequent reasons; the rest are summed under ``"other"``).
Latency percentiles are over answered requests (each once, whatever its size), linear
interpolation, in milliseconds.

>>> frame = pd.DataFrame({"version": [1, 1, 1, 1], "arm": "production",
...     "status": ["ok", "ok", "ok", "rejected"], "reason": [None, None, None, "bad age"],
...     "ts": pd.to_datetime([0.0, 0.0, 1.0, 2.0], unit="s", utc=True),
...     "latency_ms": [4.0, 4.0, 2.0, 0.5]})
>>> total = compute_service(frame).groups[0]
>>> total.requests, total.predictions, total.refused, total.error_rate, total.latency_p50_ms
(3, 3, 1, 0.3333333333333333, 3.0)
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from shipyard.errors import InvalidInput
from shipyard.monitoring._rows import MetricRow

#: Columns ``compute_service`` reads.
SERVICE_COLUMNS = ("version", "arm", "status", "reason", "ts", "latency_ms")
#: Latency percentiles reported.
PERCENTILES = (50, 95, 99)
_OTHER = "other"


class ServiceGroup(BaseModel):
    """Service metrics of one version (``arm`` None: all its arms) or one version's arm.

    ``version`` None holds refusals that never reached a version (an unknown model or alias).
    """

    model_config = ConfigDict(frozen=True)

    version: int | None
    arm: str | None
    requests: int
    predictions: int
    refused: int
    error_rate: float | None
    errors_by_reason: dict[str, int]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None

    def rows(self) -> list[MetricRow]:
        """Rows for the store; feature ``*`` for the version, ``arm:<name>`` for one arm."""
        feature = "*" if self.arm is None else f"arm:{self.arm}"
        values = {
            "requests": float(self.requests),
            "predictions": float(self.predictions),
            "refused": float(self.refused),
            "error_rate": self.error_rate,
            "latency_p50": self.latency_p50_ms,
            "latency_p95": self.latency_p95_ms,
            "latency_p99": self.latency_p99_ms,
        }
        return [
            MetricRow(metric, feature, value, rows=self.requests)
            for metric, value in values.items()
            if value is not None
        ]


class ServiceReport(BaseModel):
    """Service metrics of a window: one total per version, then one group per arm."""

    model_config = ConfigDict(frozen=True)

    requests: int
    predictions: int
    refused: int
    groups: list[ServiceGroup]

    def group(self, version: int | None, arm: str | None = None) -> ServiceGroup | None:
        """The group of ``version`` (and ``arm``), or None when the window has none."""
        for group in self.groups:
            if group.version == version and group.arm == arm:
                return group
        return None

    def rows(self, version: int) -> list[MetricRow]:
        """The stored rows of one version (its total and its arms)."""
        return [row for g in self.groups if g.version == version for row in g.rows()]


def compute_service(frame: pd.DataFrame, *, reason_limit: int = 10) -> ServiceReport:
    """Service metrics of log records with the columns of ``SERVICE_COLUMNS``."""
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(f"compute_service needs a DataFrame. Got {type(frame).__name__}.")
    lacking = [c for c in SERVICE_COLUMNS if c not in frame.columns]
    if lacking:
        raise InvalidInput(
            f"compute_service needs the columns {list(SERVICE_COLUMNS)}; missing {lacking}."
        )
    records = frame.assign(
        version=frame["version"].astype("Int64"),
        arm=frame["arm"].astype(object).where(frame["arm"].notna(), "-"),
        status=frame["status"].fillna("ok"),
    )
    keys = ["version", "arm", "status", "ts", "latency_ms"]
    requests = (
        records.groupby(keys, dropna=False, sort=False)
        .agg(rows=("status", "size"), reason=("reason", "first"))
        .reset_index()
    )
    groups: list[ServiceGroup] = []
    for version, by_version in requests.groupby("version", dropna=False, sort=True):
        number = None if pd.isna(version) else int(version)  # type: ignore[arg-type]
        groups.append(_group(number, None, by_version, reason_limit))
        arms = by_version.groupby("arm", sort=True)
        if arms.ngroups > 1 or (arms.ngroups == 1 and by_version["arm"].iloc[0] != "-"):
            groups += [_group(number, str(arm), rows, reason_limit) for arm, rows in arms]
    ok = requests["status"] == "ok"
    return ServiceReport(
        requests=len(requests),
        predictions=int(requests.loc[ok, "rows"].sum()),
        refused=int((~ok).sum()),
        groups=groups,
    )


def _group(
    version: int | None, arm: str | None, requests: pd.DataFrame, reason_limit: int
) -> ServiceGroup:
    ok = (requests["status"] == "ok").to_numpy()
    latency = requests.loc[ok, "latency_ms"].to_numpy(dtype=float, na_value=np.nan)
    latency = latency[np.isfinite(latency)]
    quantiles = (
        [float(q) for q in np.percentile(latency, PERCENTILES)] if latency.size else [None] * 3
    )
    reasons = requests.loc[~ok, "reason"].fillna("(no reason logged)").value_counts()
    by_reason = {str(k): int(v) for k, v in reasons.head(reason_limit).items()}
    if len(reasons) > reason_limit:
        by_reason[_OTHER] = int(reasons.iloc[reason_limit:].sum())
    n = len(requests)
    return ServiceGroup(
        version=version,
        arm=arm,
        requests=n,
        predictions=int(requests.loc[ok, "rows"].sum()),
        refused=int((~ok).sum()),
        error_rate=float((~ok).sum() / n) if n else None,
        errors_by_reason=by_reason,
        latency_p50_ms=quantiles[0],
        latency_p95_ms=quantiles[1],
        latency_p99_ms=quantiles[2],
    )


def service_window(root: Path, model: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The log records (answered and refused, every version) of ``model`` in ``[start, end)``,
    with the columns of ``SERVICE_COLUMNS``."""
    from shipyard.predlog import query

    return query(
        root,
        f"SELECT {', '.join(SERVICE_COLUMNS)} FROM predictions "
        f"WHERE epoch(ts) >= {start.timestamp()} AND epoch(ts) < {end.timestamp()}",
        model=model,
    )
