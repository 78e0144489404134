"""``shipyard serve --grpc-port`` as a user runs it: a real process answering Triton's client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as triton

from gates_off import NO_GATES
from shipyard import Settings
from shipyard.cli import run_cli
from shipyard.packaging import PreparedArchive
from shipyard.registry import Registry
from shipyard.serving import free_port
from shipyard.store import Store


@pytest.fixture
def home(tmp_path: Path, prepared: PreparedArchive, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Shipyard home with ``churn`` v1 in staging (production would need an approval)."""
    home = tmp_path / "home"
    for key in ("SHIPYARD_DB_URL", "SHIPYARD_ARTIFACTS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(home))
    monkeypatch.setenv("SHIPYARD_USER", "admin")
    store = Store.from_settings(Settings()).open()
    registry = Registry(store, NO_GATES)
    registry.register(prepared, name="churn", actor="alice")
    registry.promote("churn", 1, actor="alice", to="staging")
    store.close()
    return home


def test_a_busy_grpc_port_is_refused_before_start(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert run_cli(["serve", "--no-auth", "--grpc-port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"--grpc-port {port}: cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err
    assert run_cli(["serve", "--grpc-port", "0"]) == 2  # not a port


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_with_grpc_port(home: Path, tmp_path: Path, workers: int) -> None:
    # With --workers 2 both processes listen on the gRPC port (gRPC sets SO_REUSEPORT), as
    # uvicorn's workers share the HTTP one.
    port, grpc_port = free_port(), free_port()
    err_file = (tmp_path / "serve.err").open("wb")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "shipyard", "serve", "--no-auth", "--no-log"),
            *("--alias", "staging", "--port", str(port), "--grpc-port", str(grpc_port)),
            *("--workers", str(workers)),
        ],
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=err_file,
    )
    try:
        client = triton.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.is_model_ready("churn"):
                    break
            except triton.InferenceServerException:
                pass
            assert process.poll() is None, (tmp_path / "serve.err").read_text()
            assert time.monotonic() < deadline, "the gRPC endpoint did not start"
            time.sleep(0.2)
        inputs = []
        for name, datatype, value in (
            ("age", "INT64", np.array([[40]], dtype=np.int64)),
            ("income", "FP64", np.array([[52_000.0]])),
            ("tenure", "FP64", np.array([[2.5]])),
            ("plan", "BYTES", np.array([["pro"]], dtype=object)),
        ):
            tensor = triton.InferInput(name, [1, 1], datatype)
            tensor.set_data_from_numpy(value)
            inputs.append(tensor)
        result = client.infer("churn", inputs)
        assert result.as_numpy("predict")[0].decode() in ("churn", "stay")
        assert result.get_response().model_version == "1"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(20)
        err_file.close()
    err = (tmp_path / "serve.err").read_text()
    # uvicorn shuts down (the app's lifespan stops the gRPC server), then re-raises the signal.
    assert code in (0, -signal.SIGTERM) and "Traceback" not in err, err
    with socket.create_server(("127.0.0.1", grpc_port)):
        pass  # the gRPC port was released
