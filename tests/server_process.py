"""Tests that run ``shipyard serve`` as a real process: waiting until it answers (or failing
with its stderr when it exits first), or starting one on a store (``serve_process``). A free
port: ``shipyard.serving.free_port``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from shipyard.serving import free_port
from shipyard.store import Store


def wait_live(
    url: str,
    process: subprocess.Popen[bytes],
    err: Path,
    timeout: float,
    path: str = "/v2/health/live",
) -> None:
    """Until ``url`` + ``path`` answers 200; ``err`` is the process's stderr."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}{path}").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, err.read_text()
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)


@contextmanager
def serve_process(
    store: Store, home: Path, *args: str, user: str = "admin", timeout: float = 120
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """``shipyard serve`` on ``store``'s database and artifacts as ``user``, on a free port
    with ``args`` added, once ready: its URL, its process and its stderr file (under
    ``home``, its SHIPYARD_HOME). Killed on exit if it still runs."""
    port = free_port()
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(home),
        "SHIPYARD_DB_URL": store.db_url,
        "SHIPYARD_ARTIFACTS": store.artifacts_url,
        "SHIPYARD_USER": user,
    }
    home.mkdir(parents=True, exist_ok=True)
    err = home / f"serve-{port}.err"
    command = [sys.executable, "-m", "shipyard", "serve", "--port", str(port), *args]
    with err.open("wb") as err_file:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err_file)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_live(url, process, err, timeout=timeout, path="/v2/health/ready")
            yield url, process, err
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(30)
