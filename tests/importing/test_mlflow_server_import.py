"""``shipyard import mlflow models:/...`` and ``runs:/...`` against a real ``mlflow server``
(sqlite backend, artifacts served by the server) and a local MLflow store (sqlite, no server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from mlflow_support import fitted, loan_frame, mlflow, quiet

from cli_support import cli, point_cli_at
from shipyard import Client, Settings
from shipyard.registry import Registry
from shipyard.serving import free_port
from shipyard.store import Store
from shipyard.tracking import Tracker

pytestmark = pytest.mark.slow


@dataclass
class Server:
    url: str
    models: dict[int, Any]  # MLflow version -> the fitted model
    runs: dict[str, str]  # "a", "b" -> MLflow run id


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``mlflow server`` on 127.0.0.1 (sqlite, served artifacts) with ``churn`` v1 (sklearn,
    run a), v2 (xgboost, run b, alias champion), v3 (lightgbm, run b, alias production).

    The models are fitted while the server starts. Each is logged with its flavor's default
    requirements (what MLflow falls back to): inferring them loads the model in a subprocess,
    3-4 s a model, and the importer reads requirements.txt the same either way (inferred ones:
    ``test_mlflow_dir_import.py``)."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(mlflow_bin),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--workers",
            "1",
        ],
        cwd=root,
        # no job runner (its huey consumers are for GenAI jobs): a lighter server to start
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers in one group, ended together below
    )
    url = f"http://127.0.0.1:{port}"
    try:
        X, y = loan_frame()
        models = {
            1: fitted("sklearn", X, y),
            2: fitted("xgboost", X, y),
            3: fitted("lightgbm", X, y),
        }
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("mlflow server did not start: " + (root / "server.log").read_text())
            time.sleep(0.2)
        with quiet():
            mlflow.set_tracking_uri(url)
            mlflow.set_experiment("loans")
            with mlflow.start_run() as run_a:
                mlflow.log_params({"C": 1.0, "penalty": "l2"})
                for step, loss in enumerate([0.9, 0.5, 0.4]):
                    mlflow.log_metric("loss", loss, step=step)
                mlflow.sklearn.log_model(
                    models[1],
                    name="model",
                    input_example=X.head(10),
                    registered_model_name="churn",
                    skops_trusted_types=["numpy.dtype"],
                    pip_requirements=mlflow.sklearn.get_default_pip_requirements(
                        include_skops=True
                    ),
                )
            with mlflow.start_run() as run_b:
                mlflow.log_params({"n_estimators": 10})
                mlflow.log_metric("auc", 0.8)
                mlflow.xgboost.log_model(
                    models[2],
                    name="xgb",
                    input_example=X.head(10),
                    registered_model_name="churn",
                    pip_requirements=mlflow.xgboost.get_default_pip_requirements(),
                )
                mlflow.lightgbm.log_model(
                    models[3],
                    name="lgbm",
                    input_example=X.head(10),
                    registered_model_name="churn",
                    pip_requirements=mlflow.lightgbm.get_default_pip_requirements(),
                )
            client = mlflow.MlflowClient()
            client.set_registered_model_alias("churn", "champion", 2)
            client.set_registered_model_alias("churn", "production", 3)
            runs = {"a": run_a.info.run_id, "b": run_b.info.run_id}
            mlflow.set_tracking_uri("")
        yield Server(url=url, models=models, runs=runs)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


@pytest.fixture
def shipyard_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Registry, Tracker]]:
    """The CLI on a fresh store (as alice), and a registry and tracker to look at it."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    as_user = point_cli_at(monkeypatch, f"sqlite:///{tmp_path / 'sy.db'}", tmp_path, toml="")
    as_user("alice")
    store = Store(
        f"sqlite:///{tmp_path / 'sy.db'}", str(tmp_path / "home" / "artifacts"), creator="alice"
    ).open()
    yield Registry(store), Tracker(store)
    store.close()


def _load(tmp_path: Path, ref: str) -> Any:
    store = Store(
        f"sqlite:///{tmp_path / 'sy.db'}", str(tmp_path / "home" / "artifacts"), creator="alice"
    )
    client = Client(Settings(user="alice"), store=store.open()).open()
    try:
        return client.load(ref)
    finally:
        client.close()


def test_every_version_of_a_registered_model_with_runs_and_aliases(
    server: Server,
    shipyard_cli: tuple[Registry, Tracker],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry, tracker = shipyard_cli
    code, out, err = cli(
        capsys, "import", "mlflow", "models:/churn", "--tracking-uri", server.url, "--json"
    )
    assert code == 0, err
    body = json.loads(out)
    assert [(v["mlflow_version"], v["version"], v["flavor"]) for v in body["versions"]] == [
        (1, 1, "sklearn"),
        (2, 2, "xgboost"),
        (3, 3, "lightgbm"),
    ]
    # champion is set as in MLflow; production waits for a second person's approval
    assert body["aliases_set"] == {"champion": 2}
    assert body["aliases_pending"] == {"production": 3}
    assert registry.aliases("churn") == {"champion": 2}
    assert registry.get_version("churn", 3).tags["mlflow.aliases"] == ["production"]
    X, _ = loan_frame()
    for version, model in server.models.items():
        loaded = _load(tmp_path, f"churn:{version}")
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # the runs: MLflow's params and metric series, one Shipyard run per MLflow run
    v1, v2, v3 = (registry.get_version("churn", v) for v in (1, 2, 3))
    assert v1.tags["mlflow.run_id"] == server.runs["a"] and v1.tags["mlflow.version"] == 1
    assert v2.run_id == v3.run_id != v1.run_id
    run = tracker.get(v1.run_id)
    assert run.params == {"C": "1.0", "penalty": "l2"}
    assert tracker.metrics(v1.run_id) == {"loss": [(0, 0.9), (1, 0.5), (2, 0.4)]}
    assert run.environment["imported_from"]["run_id"] == server.runs["a"]
    assert run.environment["imported_from"]["tracking_uri"] == server.url
    manifest = registry.open_archive("churn", 2).manifest
    assert manifest.lineage.run_id == v2.run_id
    assert manifest.lineage.source["uri"] == "models:/churn/2"

    # idempotent: the same versions again are skipped, nothing is added
    code, out, err = cli(
        capsys, "import", "mlflow", "models:/churn/2", "--tracking-uri", server.url
    )
    assert code == 0, err
    assert "already imported" in out
    code, out, _ = cli(
        capsys, "import", "mlflow", "models:/churn", "--tracking-uri", server.url, "--json"
    )
    assert [v["skipped"] for v in json.loads(out)["versions"]] == [True, True, True]
    assert sorted(i.version.version for i in registry.versions("churn")) == [1, 2, 3]
    assert len(tracker.list_runs()) == 2


def test_an_alias_and_a_run_uri(
    server: Server,
    shipyard_cli: tuple[Registry, Tracker],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry, _ = shipyard_cli
    code, _, err = cli(
        capsys,
        "import",
        "mlflow",
        "models:/churn@champion",
        "--name",
        "champ",
        "--tracking-uri",
        server.url,
    )
    assert code == 0, err
    assert registry.get_version("champ", 1).flavor == "xgboost"
    assert registry.aliases("champ") == {"champion": 1}
    code, _, err = cli(
        capsys,
        "import",
        "mlflow",
        f"runs:/{server.runs['a']}/model",
        "--name",
        "fromrun",
        "--tracking-uri",
        server.url,
    )
    assert code == 0, err
    X, _ = loan_frame()
    loaded = _load(tmp_path, "fromrun:1")
    np.testing.assert_array_equal(loaded.predict(X), server.models[1].predict(X))


@pytest.mark.parametrize(
    ("source", "expected", "code"),
    [
        ("models:/nope", "has no registered model 'nope'", 1),
        ("models:/churn/9", "has no version 9 of registered model 'churn'", 1),
        ("models:/churn@nope", "has no alias 'nope' of registered model 'churn'", 1),
        ("runs:/0123456789abcdef/model", "has no run '0123456789abcdef'", 1),
        ("models:/churn/Production", "is not a version number", 2),
        ("runs:/only-a-run", "is not a runs:/RUN_ID/PATH URI", 2),
    ],
)
def test_unknown_models_versions_aliases_and_runs(
    server: Server,
    shipyard_cli: tuple[Registry, Tracker],
    capsys: pytest.CaptureFixture[str],
    source: str,
    expected: str,
    code: int,
) -> None:
    registry, tracker = shipyard_cli
    got, out, err = cli(
        capsys, "import", "mlflow", source, "--name", "x", "--tracking-uri", server.url
    )
    assert got == code, out + err
    assert expected in err
    assert registry.list_models() == [] and tracker.list_runs() == []


def test_an_unreachable_server_or_no_tracking_uri(
    shipyard_cli: tuple[Registry, Tracker], capsys: pytest.CaptureFixture[str]
) -> None:
    registry, _ = shipyard_cli
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = cli(capsys, "import", "mlflow", "models:/churn/1", "--tracking-uri", url)
    assert code == 1
    assert f"The MLflow tracking server at {url} cannot be reached" in err
    code, _, err = cli(capsys, "import", "mlflow", "models:/churn/1")
    assert code == 2
    assert "pass --tracking-uri URI (or set MLFLOW_TRACKING_URI)" in err
    assert registry.list_models() == []


def test_a_local_mlflow_store_is_read_through_mlflow(
    shipyard_cli: tuple[Registry, Tracker],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry, tracker = shipyard_cli
    monkeypatch.chdir(tmp_path)  # MLflow puts a local store's artifacts in ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    X, y = loan_frame()
    model = fitted("lightgbm", X, y)
    with quiet():
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("local")
        with mlflow.start_run():
            mlflow.log_param("lr", 0.1)
            mlflow.lightgbm.log_model(
                model,
                name="m",
                input_example=X.head(10),
                registered_model_name="loans",
                pip_requirements=mlflow.lightgbm.get_default_pip_requirements(),  # not inferred
            )
        mlflow.set_tracking_uri("")
    code, _, err = cli(capsys, "import", "mlflow", "models:/loans/1", "--tracking-uri", uri)
    assert code == 0, err
    assert registry.get_version("loans", 1).flavor == "lightgbm"
    [run] = tracker.list_runs()
    assert run.params == {"lr": "0.1"}
    np.testing.assert_array_equal(_load(tmp_path, "loans:1").predict(X), model.predict(X))
