"""Fault fixtures: a real small disk (tmpfs) to fill, and a store serving ``churn``.

The disk is a tmpfs of 2 MiB mounted for one test and unmounted after it, even when the test
fails: writes to it really fail with ENOSPC (no mock of ``os.write``). Mounting needs root;
without it the disk-full tests are skipped, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gates_off import NO_GATES
from shipyard import Client, Settings
from shipyard.packaging import prepare_archive
from shipyard.registry import Registry
from shipyard.store import Store

DISK_BYTES = 2 * 1024 * 1024


class SmallDisk:
    """A mounted tmpfs, and a ballast file that fills it (``fill``) or frees it (``free``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ballast = path / "ballast"

    def free_bytes(self) -> int:
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Fill the disk to the last byte, then give back ``leave`` bytes (rounded to pages)."""
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            chunk = b"\0" * 65536
            while True:
                try:
                    os.write(fd, chunk)
                except OSError:
                    try:  # the last pages, a byte at a time is too slow: a page each
                        while True:
                            os.write(fd, chunk[:4096])
                    except OSError:
                        break
        finally:
            os.close(fd)
        if leave:
            size = self.ballast.stat().st_size
            os.truncate(self.ballast, max(0, size - leave))

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)


def _mount(path: Path) -> None:
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(path)],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 2 MiB tmpfs mounted at ``tmp_path / "disk"`` (root only; skipped otherwise unless CI)."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("The disk-full tests mount a tmpfs: run them as root in CI.")
        pytest.skip("mounting a tmpfs needs root")
    path = tmp_path / "disk"
    path.mkdir()
    _mount(path)
    try:
        yield SmallDisk(path)
    finally:
        # Lazy: a log file still open in a daemon thread must not keep the disk mounted.
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


@pytest.fixture(scope="module")
def served_store(
    tmp_path_factory: pytest.TempPathFactory, fitted_pipeline, training_data
) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    """A SQLite store (the database does not matter here) with ``churn`` v1 in production."""
    home = tmp_path_factory.mktemp("faults-store")
    store = Store(f"sqlite:///{home / 'shipyard.db'}", str(home / "artifacts"), creator="admin")
    store.open()
    X, y, Xe, ye = training_data
    # No ONNX export and no load check: seconds saved; the runtime is not what is tested.
    prepared = prepare_archive(
        fitted_pipeline, X_train=X, y_train=y, X_eval=Xe, y_eval=ye, onnx=False, load_check=False
    )
    Registry(store, NO_GATES).register(prepared, name="churn", actor="alice")
    clients: list[Client] = []

    def client(user: str) -> Client:
        c = Client(Settings(user=user), store=store, project=NO_GATES).open()
        clients.append(c)
        return c

    client("admin").users.set_role("bob", "approver", actor="admin")
    client("bob").approve("churn", 1, reason="metrics ok")
    client("alice").registry.promote("churn", 1, actor="alice")
    yield store
    store.close()


def log_records(start: int, n: int) -> list[dict[str, Any]]:
    """``n`` prediction log records of ``churn`` v1, ids ``id-<start>`` onwards."""
    return [
        {
            "prediction_id": f"id-{i:06d}",
            "model": "churn",
            "version": 1,
            "inputs": {"age": i},
            "prediction": "stay",
            "latency_ms": 0.5,
            "arm": "production",
        }
        for i in range(start, start + n)
    ]


@pytest.fixture
def record() -> Callable[[int], dict[str, object]]:
    """``record(i)``: one churn input row."""

    def make(i: int) -> dict[str, object]:
        return {"age": 20 + i % 50, "income": 40_000.0 + i, "tenure": 1.5, "plan": "pro"}

    return make


class Staller:
    """A TCP server on 127.0.0.1 that accepts every connection, says ``greeting`` (an SMTP
    server's ``220``; nothing for HTTP), reads what comes and never answers: a mail server
    or webhook that has stalled (not one that is down: the connection succeeds)."""

    def __init__(self, greeting: bytes = b"") -> None:
        self.greeting = greeting
        self.accepted = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            self._conns.append(conn)
            if self.greeting:
                conn.sendall(self.greeting)
            # Never read to the end, never answer: the kernel buffers what the client sends.

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._conns:
            conn.close()
        self._sock.close()


@pytest.fixture
def stalled_webhook() -> Iterator[Staller]:
    server = Staller()
    yield server
    server.close()


@pytest.fixture
def stalled_smtp() -> Iterator[Staller]:
    server = Staller(b"220 mail.example.com ESMTP ready\r\n")
    yield server
    server.close()
