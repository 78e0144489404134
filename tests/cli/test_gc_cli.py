"""``shipyard gc``: old prediction-log partitions and monitoring rows go, recent ones stay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_monitor_cli import _frame, registered  # noqa: F401 - the fixture is used by name

from shipyard import Client, Settings
from shipyard.cli import run_cli
from shipyard.monitoring import MonitoringResults, compute_drift
from shipyard.serving import PredictionLog


def test_gc_applies_retention(registered: Path, capsys) -> None:  # noqa: F811  # type: ignore[no-untyped-def]
    root = registered / "log"
    now = datetime.now(UTC)
    log = PredictionLog(root).open()
    for age_days, n in ((200, 30), (100, 20), (1, 10)):
        ts = now - timedelta(days=age_days)
        log.append(
            {
                "prediction_id": f"d{age_days}-{i}",
                "model": "churn",
                "version": 1,
                "arm": "production",
                "inputs": {"age": 40.0},
                "prediction": 1,
                "latency_ms": 1.0,
                "status": "ok",
                "ts": ts,
            }
            for i in range(n)
        )
    log.close()
    c = Client(Settings()).open()
    loaded = c.load("churn:1")
    report = compute_drift(loaded.reference_profile["inputs"], _frame(500, 1))
    results = MonitoringResults(c.store)
    results.save(
        report,
        model="churn",
        version=1,
        source="old",
        actor="t",
        window_end=now - timedelta(days=400),
    )
    results.save(report, model="churn", version=1, source="new", actor="t", window_end=now)
    c.close()
    base = ["--log-dir", str(root)]

    def count() -> int:
        return int(
            PredictionLog(root).query("SELECT count(*) AS n FROM predictions", model="churn")["n"][
                0
            ]
        )

    assert run_cli(["gc", "--dry-run", "--json", *base]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] and len(dry["partitions"]) == 2 and dry["monitoring_rows"] > 0
    assert count() == 60
    assert run_cli(["gc", "--predictions", "150d", "--monitoring", "keep", *base]) == 0
    assert "from 1 prediction-log partition(s)" in capsys.readouterr().out
    assert count() == 30
    assert run_cli(["gc", "--json", *base]) == 0
    done = json.loads(capsys.readouterr().out)
    assert len(done["partitions"]) == 1 and done["monitoring_rows"] == dry["monitoring_rows"]
    assert count() == 10
    assert run_cli(["monitor", "history", "churn", "--metric", "rows", "--json"]) == 0
    assert [r["source"] for r in json.loads(capsys.readouterr().out)] == ["new"]
    assert run_cli(["gc", "--predictions", "soon", *base]) == 2
    assert "Invalid --predictions 'soon'" in capsys.readouterr().err
    assert run_cli(["audit", "log", "--action", "gc.completed", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
