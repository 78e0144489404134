"""``monitor_window``: one run over a file or a logged window, stored, reported and alerted;
monitoring a file loads the archive's profile and schema without unpickling the model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from churn_data import churn_frame, log_predictions
from shipyard import Client, Settings
from shipyard.checks import MonitorRequest, monitor_window
from shipyard.config import ProjectConfig, load_project
from shipyard.errors import InvalidInput
from shipyard.monitoring import MonitoringResults
from shipyard.store import Store


def _register(client: Client) -> None:
    X = churn_frame(3_000, 0)
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features=["plan"])
    model.fit(X, (X["age"] > 45).astype(int))
    client.register(model, name="churn", X_train=X, y_train=None, onnx=False)


def test_a_file_and_a_logged_window(
    client_for: Callable[[str], Client], store: Store, tmp_path: Path
) -> None:
    _register(client_for("admin"))
    config = tmp_path / "shipyard.toml"
    config.write_text(
        '[[alerts]]\nname = "age"\nmetric = "drift"\nfeature = "age"\nseverity = "warning"\n',
        encoding="utf-8",
    )
    batch = tmp_path / "batch.parquet"
    churn_frame(4_000, 1).to_parquet(batch)
    common = {"actor": "cron", "project": load_project(config), "log_root": tmp_path / "log"}
    clean = monitor_window(store, MonitorRequest("churn:1", current=batch, **common))
    assert (clean.model, clean.version, clean.source) == ("churn", 1, str(batch))
    assert clean.report.n_rows == 4_000 and not clean.breached and clean.alerts == []
    assert clean.performance is None and clean.service is None and clean.report_path is None

    shifted = churn_frame(2_000, 2)
    shifted["age"] += 5.0
    log_predictions(tmp_path / "log", shifted)
    end = datetime.now(UTC) + timedelta(minutes=1)
    html = tmp_path / "report.html"
    request = MonitorRequest(
        "churn:1", start=end - timedelta(hours=1), end=end, report=html, **common
    )
    seen: list[tuple[str, int | None, int]] = []

    @contextmanager
    def bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        yield lambda n: seen.append((description, total, n))

    drifted = monitor_window(store, request, progress=bar)
    assert drifted.source.startswith("log:") and drifted.report.n_rows == 2_000
    assert sum(n for _, _, n in seen) == 2_000 and seen[0][:2] == (
        f"Checking {drifted.source}",
        2_000,
    )
    assert drifted.breached and [a.rule for a in drifted.alerts] == ["age"]
    assert drifted.service is not None and drifted.service.predictions == 2_000
    assert drifted.report_path == html and "Plotly.newPlot" in html.read_text(encoding="utf-8")
    runs = MonitoringResults(store).history("churn", metric="drift", feature="age")
    assert [r.run_id for r in runs] == [clean.run_id, drifted.run_id]
    assert [r.source for r in runs] == [f"inputs:{batch}", f"inputs:{drifted.source}"]


def test_a_request_names_exactly_one_window(tmp_path: Path) -> None:
    base = {"actor": "a", "project": ProjectConfig(), "log_root": tmp_path}
    now = datetime.now(UTC)
    for window in (
        {},
        {"start": now},
        {"current": tmp_path / "x.csv", "start": now - timedelta(hours=1), "end": now},
    ):
        with pytest.raises(InvalidInput, match="either a file"):
            MonitorRequest("churn", **base, **window).check()  # type: ignore[arg-type]


def test_monitoring_a_file_does_not_unpickle_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Input drift and quality read the archive's profile and schema only: no scikit-learn
    # import (1.5 s of a 1M-row run) and no plotly without --report.
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "SHIPYARD_USER": "alice",
    }
    env.pop("SHIPYARD_DB_URL", None)
    for key in ("SHIPYARD_HOME", "SHIPYARD_USER"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("SHIPYARD_DB_URL", raising=False)
    client = Client(Settings()).open()
    _register(client)
    client.close()
    batch = tmp_path / "batch.parquet"
    churn_frame(2_000, 1).to_parquet(batch)
    code = (
        "import json, sys\n"
        "from shipyard.cli import run_cli\n"
        f"code = run_cli(['monitor', 'run', 'churn:1', '--current', {str(batch)!r}, '--json'])\n"
        "heavy = [m for m in ('sklearn', 'plotly') if m in sys.modules]\n"
        "print(json.dumps({'code': code, 'heavy': heavy}), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    result = json.loads(done.stderr.strip().splitlines()[-1])
    assert result == {"code": 0, "heavy": []}
    assert json.loads(done.stdout)["n_rows"] == 2_000
