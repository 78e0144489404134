"""Tests that run ``shipyard serve`` as a real process: a free port, and waiting until it
answers (or failing with its stderr when it exits first)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_live(url: str, process: subprocess.Popen[bytes], err: Path, timeout: float) -> None:
    """Until ``url``'s ``/v2/health/live`` answers 200; ``err`` is the process's stderr."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/v2/health/live").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, err.read_text()
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
