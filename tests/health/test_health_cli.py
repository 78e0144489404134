"""``shipyard tokens create --team``, ``shipyard usage`` and ``shipyard status`` from the shell."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli_support import cli, point_cli_at
from shipyard.predlog import PredictionLog
from shipyard.serving import create_app, serve_in_thread
from shipyard.settings import ServeSettings
from shipyard.store import Store

RULES = """
[[alerts]]
name = "db-size"
metric = "shipyard_database_bytes"
threshold = {db_limit}
cooldown = "1h"

[[alerts]]
name = "server-memory"
metric = "process_resident_memory_bytes"
threshold = 1e15
"""


def _log(root: Path) -> None:
    day = datetime(2026, 12, 1, tzinfo=UTC)
    with PredictionLog(root) as log:
        log.append(
            [
                {
                    "prediction_id": f"p{i}",
                    "ts": day,
                    "model": "churn",
                    "version": 1,
                    "prediction": 1,
                    "caller": caller,
                    "team": team,
                    "compute_ms": 2.0,
                    "request_rows": 1,
                }
                for i, (caller, team) in enumerate([("web", "risk")] * 3 + [("etl", None)])
            ]
        )


def test_tokens_with_a_team(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    point_cli_at(monkeypatch, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, toml=None)
    code, out, _ = cli(
        capsys, "tokens", "create", "--role", "scorer", "--name", "web", "--team", "risk"
    )
    assert code == 0 and "team risk" in out
    code, out, _ = cli(capsys, "tokens", "list", "--json")
    assert [(t["name"], t["team"]) for t in json.loads(out)] == [("web", "risk")]
    code, out, err = cli(capsys, "tokens", "create", "--role", "scorer", "--team", "risk team")
    assert code == 2 and "A team must be 1 to 128 letters" in err and "'risk team'" in err
    assert len(err.strip().splitlines()) == 1
    code, out, _ = cli(capsys, "tokens", "list", "--json")
    assert len(json.loads(out)) == 1  # nothing half-made


def test_usage_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    point_cli_at(monkeypatch, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, toml=None)
    _log(tmp_path / "home" / "predictions")
    code, out, _ = cli(capsys, "usage", "--json")
    assert code == 0
    assert [(r["team"], r["requests"], r["rows"]) for r in json.loads(out)] == [
        ("risk", 3, 3),
        (None, 1, 1),
    ]
    code, out, _ = cli(capsys, "usage", "--by", "token", "--since", "2026-12-01")
    assert code == 0 and "Usage by token (since 2026-12-01 00:00 UTC)" in out and "etl" in out
    code, out, _ = cli(capsys, "usage", "--json", "--since", "2026-12-02")
    assert code == 0 and json.loads(out) == []
    code, _, err = cli(capsys, "usage", "--by", "user")
    assert code == 2 and "--by must be one of: team, token, model. Got 'user'." in err
    code, _, err = cli(capsys, "usage", "--since", "last week")
    assert code == 2 and "Invalid --since 'last week'" in err


def test_status_reads_store_log_and_servers_and_raises_alerts(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    served_store: Store,
) -> None:
    toml = RULES.format(db_limit=1)  # any database is above 1 byte
    point_cli_at(monkeypatch, served_store.db_url, tmp_path, toml=toml)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", served_store.artifacts_url)
    _log(tmp_path / "home" / "predictions")
    app = create_app(served_store, settings=ServeSettings(auth=False))
    with serve_in_thread(app) as url:
        code, out, _ = cli(
            capsys, "status", "--json", "--server", url, "--server", "http://127.0.0.1:9"
        )
    assert code == 0
    status = json.loads(out)
    assert status["database"]["bytes"] > 0 and status["database"]["url"].startswith("sqlite")
    assert status["artifacts"]["files"] >= 1 and status["artifacts"]["bytes"] > 1000
    assert status["log"]["parquet_files"] >= 2 and status["log"]["wal_segments"] == 0
    live, dead = status["servers"]
    assert live["error"] is None and live["memory_bytes"] > 10_000_000 and live["cpu_seconds"] > 0
    assert dead["error"].startswith("ConnectError") and dead["memory_bytes"] is None

    code, out, _ = cli(capsys, "status")
    assert code == 0 and "log Parquet" in out and "database" in out

    code, out, _ = cli(capsys, "status", "--alert", "--json")
    assert code == 1  # a rule fired
    alerts = json.loads(out)["alerts"]
    assert [(a["rule"], a["metric"], a["status"]) for a in alerts] == [
        ("db-size", "shipyard_database_bytes", "sent")
    ]
    code, out, _ = cli(capsys, "status", "--alert")
    assert code == 1 and "db-size" in out and "(suppressed)" in out  # the cool-down holds
    code, out, _ = cli(capsys, "alerts", "list", "--json")
    assert [a["model"] for a in json.loads(out)][:2] == ["_system", "_system"]

    (tmp_path / "shipyard.toml").write_text(RULES.format(db_limit=1e15))
    code, out, _ = cli(capsys, "status", "--alert", "--json")
    assert code == 0 and json.loads(out)["alerts"] == []
