"""Tests that run ``shipyard serve`` as a real process: waiting until it answers (or failing
with its stderr when it exits first). A free port: ``shipyard.serving.free_port``."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx


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
