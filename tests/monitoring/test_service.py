"""Service metrics from the prediction log: volume, refusals by reason, latency per version/arm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidInput
from shipyard.monitoring import compute_service, service_window


def test_requests_are_rebuilt_and_percentiles_are_per_request(tmp_path: Path) -> None:
    from shipyard.predlog import PredictionLog

    now = datetime.now(UTC).timestamp()
    records = []
    latencies = np.arange(1.0, 101.0)  # 100 answered requests of 3 rows each on v1 production
    for i, lat in enumerate(latencies):
        for j in range(3):
            records.append(
                {
                    "prediction_id": f"a{i}-{j}",
                    "ts": now - i,
                    "model": "churn",
                    "version": 1,
                    "arm": "production",
                    "latency_ms": float(lat),
                    "inputs": {"x": 1},
                    "prediction": 0,
                }
            )
    for i in range(10):  # canary: 10 single-row requests of 50 ms
        records.append(
            {
                "prediction_id": f"c{i}",
                "ts": now - i,
                "model": "churn",
                "version": 2,
                "arm": "canary",
                "latency_ms": 50.0,
                "inputs": {"x": 1},
                "prediction": 1,
            }
        )
    for i in range(5):  # refusals: 4 on v1 with a reason, 1 without version
        records.append(
            {
                "ts": now - i,
                "model": "churn",
                "version": 1 if i < 4 else None,
                "arm": "production",
                "status": "rejected",
                "latency_ms": 0.1,
                "reason": "age must be a number" if i < 3 else "too large",
            }
        )
    with PredictionLog(tmp_path / "log") as log:
        log.append(records)
    frame = service_window(
        tmp_path / "log",
        "churn",
        datetime.now(UTC) - timedelta(hours=1),
        datetime.now(UTC) + timedelta(minutes=1),
    )
    report = compute_service(frame)
    assert (report.requests, report.predictions, report.refused) == (115, 310, 5)
    v1 = report.group(1)
    assert v1 is not None and (v1.requests, v1.predictions, v1.refused) == (104, 300, 4)
    assert v1.error_rate == pytest.approx(4 / 104)
    assert v1.errors_by_reason == {"age must be a number": 3, "too large": 1}
    assert v1.latency_p50_ms == pytest.approx(np.percentile(latencies, 50))
    assert v1.latency_p99_ms == pytest.approx(np.percentile(latencies, 99))
    assert report.group(1, "production") is not None
    v2 = report.group(2)
    assert v2 is not None and v2.latency_p99_ms == 50.0 and v2.error_rate == 0.0
    unresolved = report.group(None)
    assert unresolved is not None and unresolved.refused == 1 and unresolved.latency_p50_ms is None
    rows = {(r.metric, r.feature): r.value for r in report.rows(1)}
    assert rows[("error_rate", "*")] == pytest.approx(4 / 104)
    assert ("latency_p99", "arm:production") in rows


def test_reasons_beyond_the_limit_are_summed_and_bad_frames_refused() -> None:
    n = 15
    frame = pd.DataFrame(
        {
            "version": [1] * n,
            "arm": [None] * n,
            "status": ["rejected"] * n,
            "reason": [f"r{i}" for i in range(n)],
            "ts": pd.to_datetime(np.arange(n), unit="s", utc=True),
            "latency_ms": [1.0] * n,
        }
    )
    group = compute_service(frame, reason_limit=10).groups[0]
    assert group.errors_by_reason["other"] == 5 and len(group.errors_by_reason) == 11
    assert group.error_rate == 1.0 and group.latency_p50_ms is None
    assert len(compute_service(frame).groups) == 1  # no arm logged: no per-arm groups
    with pytest.raises(InvalidInput, match="latency_ms"):
        compute_service(frame.drop(columns="latency_ms"))
