"""``shipyard tokens create`` and ``shipyard serve`` as a user runs them: a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gates_off import NO_GATES
from server_process import wait_live
from shipyard import Settings
from shipyard.cli import run_cli
from shipyard.packaging import PreparedArchive
from shipyard.registry import Registry
from shipyard.serving import free_port
from shipyard.store import Store

GOOD = {"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}


def test_tokens_and_serve(
    tmp_path: Path,
    prepared: PreparedArchive,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "SHIPYARD_HOME": str(home), "SHIPYARD_USER": "admin"}
    env.pop("SHIPYARD_DB_URL", None)
    env.pop("SHIPYARD_ARTIFACTS", None)
    for key in ("SHIPYARD_DB_URL", "SHIPYARD_ARTIFACTS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(home))
    monkeypatch.setenv("SHIPYARD_USER", "admin")
    store = Store.from_settings(Settings()).open()
    registry = Registry(store, NO_GATES)
    registry.register(prepared, name="churn", actor="alice")
    store.close()

    assert run_cli(["tokens", "create", "--role", "scorer", "--name", "web"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("sy_")
    monkeypatch.setenv("SHIPYARD_USER", "mallory")
    assert run_cli(["tokens", "create", "--role", "admin"]) == 1
    assert "only admins" in capsys.readouterr().err
    assert run_cli(["serve", "--models", "nosuch"]) == 1  # refuses to start
    assert "no model 'nosuch'" in capsys.readouterr().err
    assert run_cli(["serve", "--compactor", "fork"]) == 2  # refused before anything starts
    err = capsys.readouterr().err
    assert "--compactor must be process or thread. Got 'fork'" in err and "Traceback" not in err
    assert run_cli(["serve", "--log-level", "loud"]) == 2
    err = capsys.readouterr().err
    assert "--log-level must be one of debug, info, warning" in err and "Traceback" not in err

    port = free_port()
    err_file = (tmp_path / "serve.err").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shipyard",
            "serve",
            "--port",
            str(port),
            "--models",
            "churn",
            "--alias",
            "staging",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=err_file,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_live(url, process, tmp_path / "serve.err", timeout=30)
        # no staging version yet: known model, 503 until promoted
        headers = {"Authorization": f"Bearer {token}"}
        body = {"records": [GOOD]}
        first = httpx.post(f"{url}/models/churn/predict", json=body, headers=headers)
        assert first.status_code == 503
        assert httpx.post(f"{url}/models/churn/predict", json=body).status_code == 401
        reopened = Store.from_settings(Settings()).open()
        Registry(reopened).promote("churn", 1, actor="alice", to="staging")
        reopened.close()
        deadline = time.monotonic() + 5
        while (
            r := httpx.post(f"{url}/models/churn/predict", json=body, headers=headers)
        ).status_code != 200:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.1)
        assert r.headers["x-shipyard-version"] == "1"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
        err_file.close()
    assert (home / "predictions").is_dir()  # the prediction log is on by default
    said = (tmp_path / "serve.err").read_text()  # at the default level, info
    assert f"Uvicorn running on http://127.0.0.1:{port}" in said
    assert "churn: serving v1 (" in said  # Shipyard's own lines, in uvicorn's format
    assert "POST /models/churn/predict" not in said  # no access log unless --access-log
