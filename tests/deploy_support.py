"""The deploy tests' shared set-up: a registered model, a lock of one's choosing, and a pod
of the written manifests run as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from server_process import wait_live
from shipyard.client import Client
from shipyard.serving import free_port


@dataclass(frozen=True)
class Registered:
    """The registered model, its eval rows and where the CLI's store lives."""

    client: Client
    rows: pd.DataFrame
    home: Path


def register_with_lock(
    monkeypatch: pytest.MonkeyPatch, c: Client, model: Any, X: Any, lock: str, name: str
) -> None:
    """Register ``model`` as ``name`` with ``lock`` as its runtime.lock and requirements.lock."""
    fake: Callable[..., str] = lambda *_: lock  # noqa: E731
    with monkeypatch.context() as m:
        m.setattr("shipyard.packaging._prepare.requirements_lock", fake)
        m.setattr("shipyard.packaging._prepare.runtime_lock", fake)
        c.register(model, name=name, X_train=X, onnx=False)


class Pod:
    """One pod of a Deployment (or of KServe's predictor), as a process: the container's
    environment resolved as kubelet resolves it (``secrets``: name -> key -> value, the pod's
    name for ``metadata.name``), its paths moved under ``tmp`` and its ports to free ones."""

    def __init__(
        self, name: str, tmp: Path, container: dict[str, Any], secrets: dict[str, dict[str, str]]
    ) -> None:
        self.name = name
        self.home = tmp / name  # the image's SHIPYARD_HOME volume, /var/lib/shipyard
        self.home.mkdir()
        self.err = tmp / f"{name}.err"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SHIPYARD_", "AWS_")) and k != "PYTEST_CURRENT_TEST"
        }
        # The image's ENV (Dockerfile), then the container's env from the manifest.
        env |= {"SHIPYARD_HOME": str(self.home), "SHIPYARD_USER": "container"}
        env["AWS_EC2_METADATA_DISABLED"] = "true"  # no instance-metadata lookups here
        for entry in container["env"]:
            source = entry.get("valueFrom", {})
            if "value" in entry:
                env[entry["name"]] = entry["value"]
            elif "fieldRef" in source:
                assert source["fieldRef"]["fieldPath"] == "metadata.name"
                env[entry["name"]] = name
            else:
                ref = source["secretKeyRef"]
                value = secrets[ref["name"]].get(ref["key"])
                assert value is not None or ref.get("optional"), ref
                if value is not None:
                    env[entry["name"]] = value
        self.env = env
        self.args = [a.replace("/var/lib/shipyard", str(self.home)) for a in container["args"]]
        self.args[self.args.index("--port") + 1] = str(self.port)
        self.args[self.args.index("--host") + 1] = "127.0.0.1"
        self.grpc_port = free_port() if "--grpc-port" in self.args else None
        if self.grpc_port:
            self.args[self.args.index("--grpc-port") + 1] = str(self.grpc_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bootstrap(self, archive: Path, digest: str) -> str:
        """What the image's entrypoint runs before the container's command; its output."""
        done = subprocess.run(
            [
                *(sys.executable, "-m", "shipyard", "deploy", "bootstrap", str(archive)),
                *("--name", "churn", "--version", "1", "--alias", "staging", "--digest", digest),
            ],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self) -> None:
        assert self.args[:2] == ["shipyard", "serve"]
        with self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", *self.args],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def wait(self) -> None:
        assert self.process is not None
        wait_live(self.url, self.process, self.err, 180, path="/v2/health/ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(120)
