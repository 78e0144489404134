"""``shipyard gc``: old prediction-log partitions, monitoring rows and job runs go (by
``[retention]`` or options), recent ones stay; archives of unused archived versions go."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from test_monitor_cli import registered  # noqa: F401 - the fixture is used by name

from churn_data import churn_frame
from retention_rows import add_job_run, add_monitoring_row, rows_left
from shipyard import Client, Settings
from shipyard.cli import run_cli
from shipyard.cli._gc_cmd import _size
from shipyard.monitoring import MonitoringResults, compute_drift
from shipyard.predlog import PredictionLog


def test_gc_applies_retention(registered: Path, capsys) -> None:  # noqa: F811  # type: ignore[no-untyped-def]
    root = registered / "log"
    now = datetime.now(UTC)
    _log_partitions(root, {200: 30, 100: 20, 1: 10})
    c = Client(Settings()).open()
    loaded = c.load("churn:1")
    report = compute_drift(loaded.reference_profile["inputs"], churn_frame(500, 1))
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
    # two days: their predictions partition and their prediction-id index each
    assert dry["dry_run"] and len(dry["partitions"]) == 4 and dry["monitoring_rows"] > 0
    assert count() == 60
    assert run_cli(["gc", "--predictions", "150d", "--monitoring", "keep", *base]) == 0
    assert "from 2 prediction-log partition(s)" in capsys.readouterr().out
    assert count() == 30
    assert run_cli(["gc", "--json", *base]) == 0
    done = json.loads(capsys.readouterr().out)
    assert len(done["partitions"]) == 2 and done["monitoring_rows"] == dry["monitoring_rows"]
    assert count() == 10
    assert run_cli(["monitor", "history", "churn", "--metric", "rows", "--json"]) == 0
    assert [r["source"] for r in json.loads(capsys.readouterr().out)] == ["new"]
    assert run_cli(["gc", "--predictions", "soon", *base]) == 2
    assert "Invalid --predictions 'soon'" in capsys.readouterr().err
    assert run_cli(["audit", "log", "--action", "gc.completed", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def _log_partitions(root: Path, rows_by_age: dict[int, int]) -> None:
    """``rows_by_age[d]`` predictions of churn v1 logged ``d`` days ago (one partition each)."""
    now = datetime.now(UTC)
    log = PredictionLog(root).open()
    for age_days, n in rows_by_age.items():
        log.append(
            {
                "prediction_id": f"p{age_days}-{i}",
                "model": "churn",
                "version": 1,
                "arm": "production",
                "inputs": {"age": 40.0},
                "prediction": 1,
                "latency_ms": 1.0,
                "status": "ok",
                "ts": now - timedelta(days=age_days),
            }
            for i in range(n)
        )
    log.close()


def _partition_files(root: Path, older_than_days: int) -> list[Path]:
    cutoff = (datetime.now(UTC) - timedelta(days=older_than_days)).date().isoformat()
    return [
        p
        for top in ("predictions", "ids")  # a day's parts and its prediction-id index
        for folder in (root / top).rglob("date=*")
        if folder.name.removeprefix("date=") < cutoff
        for p in folder.rglob("*")
        if p.is_file()
    ]


def _seed_rows(c: Client) -> None:
    now = datetime.now(UTC)
    for days in (400, 60, 0):
        add_monitoring_row(c.store, now - timedelta(days=days), f"m{days}")
    for days in (30, 1):
        add_job_run(c.store, now - timedelta(days=days), "succeeded", f"j{days}")


def test_retention_table_drives_gc(
    registered: Path,  # noqa: F811 - pytest fixture
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = registered / "log"
    _log_partitions(root, {200: 20, 100: 20, 1: 20})
    config = registered / "shipyard.toml"
    config.write_text(
        '[retention]\npredictions = "150d"\nmonitoring = "30d"\njob_runs = "7d"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("SHIPYARD_CONFIG", str(config))
    c = Client(Settings()).open()
    _seed_rows(c)
    doomed = _partition_files(root, 150)
    freed = sum(p.stat().st_size for p in doomed)
    assert doomed and freed > 0
    before = sorted(p for p in root.rglob("*") if p.is_file())
    base = ["--log-dir", str(root)]
    summary = (
        f"{_size(freed)} in {len(doomed)} file(s) from 2 prediction-log partition(s), "
        "2 monitoring result row(s) and 1 job run(s)."
    )

    assert run_cli(["gc", "--dry-run", *base]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"Would free {summary}" in out and "Nothing was deleted" in out
    assert sorted(p for p in root.rglob("*") if p.is_file()) == before
    assert rows_left(c.store) == (["m0", "m400", "m60"], ["j1", "j30"])

    assert run_cli(["gc", *base]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"Freed {summary}" in out
    after = sorted(p for p in root.rglob("*") if p.is_file())
    assert after == sorted(set(before) - set(doomed))
    assert rows_left(c.store) == (["m0"], ["j1"])

    # a bad [retention] value: refused before anything is deleted (90d would take a partition)
    config.write_text('[retention]\npredictions = "90d"\nmonitoring = "soon"\n')
    assert run_cli(["gc", *base]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "[retention] monitoring: Invalid age 'soon'" in err and "e.g. 1d" in err
    assert sorted(p for p in root.rglob("*") if p.is_file()) == after
    config.write_text('[retention]\npredictions = "90d"\nlogs = "1d"\n')
    assert run_cli(["gc", *base]) == 2
    assert "[retention] logs: unknown key. Use one of: predictions," in capsys.readouterr().err
    assert sorted(p for p in root.rglob("*") if p.is_file()) == after

    assert run_cli(["audit", "log", "--action", "gc.completed", "--json"]) == 0
    (event,) = json.loads(capsys.readouterr().out)  # the dry run and refused runs: no event
    assert event["actor"] == "alice" and event["details"]["bytes"] == freed
    assert len(event["details"]["partitions"]) == 2  # the day's predictions and its id index
    c.close()


def test_gc_archived_artifacts_from_the_cli(
    registered: Path,  # noqa: F811 - pytest fixture
    capsys: pytest.CaptureFixture[str],
) -> None:
    X = churn_frame(2_000, 3)
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features=["plan"])
    model.fit(X, (X["age"] > 45).astype(int))
    c = Client(Settings()).open()
    c.register(model, name="churn", X_train=X, onnx=False)
    key = c.registry.get_version("churn", 2).archive_key
    c.close()
    assert run_cli(["archive", "churn", "2", "--reason", "superseded"]) == 0
    base = ["--log-dir", str(registered / "log"), "--predictions", "keep"]
    assert run_cli(["gc", "--archived-artifacts", "--dry-run", *base]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Would free" in out and "of archives of archived versions: churn v2." in out
    c = Client(Settings()).open()
    assert c.store.artifacts.exists(key)
    c.close()
    assert run_cli(["gc", "--archived-artifacts", *base]) == 0
    assert "of archives of archived versions: churn v2." in capsys.readouterr().out
    c = Client(Settings()).open()
    assert not c.store.artifacts.exists(key)
    assert c.registry.get_version("churn", 2).archived_at is not None  # the row stays
    c.close()
    data = registered / "in.parquet"
    X.head(5).to_parquet(data)
    assert run_cli(["score", "churn:2", str(data), str(registered / "out.parquet")]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("Error:") and "archive file was deleted" in err and "Traceback" not in err
    assert run_cli(["score", "churn:1", str(data), str(registered / "out.parquet")]) == 0
    capsys.readouterr()
    assert run_cli(["audit", "log", "--action", "version.artifacts_deleted", "--json"]) == 0
    (event,) = json.loads(capsys.readouterr().out)
    assert event["subject"] == "model:churn/2" and event["details"]["archive"] == key
