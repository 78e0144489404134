"""Replica helpers: real ``shipyard serve`` processes sharing one PostgreSQL registry, one
artifact folder and one prediction log folder, as replicas on several hosts share a database
and an object store.

``Replica`` starts one server and knows how to stop it (SIGTERM), kill it (SIGKILL) and read
its ``/metrics`` with prometheus-client's own text parser; ``Load`` sends requests from
threads to several servers and keeps what each acknowledged. (A module of its own, not the
conftest: several test folders have a conftest.py, so ``from conftest import`` is ambiguous.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from server_process import wait_live
from shipyard.serving import free_port
from shipyard.store import Store

PG_URL = os.environ.get("SHIPYARD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
GOOD = {"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}


@dataclass(frozen=True)
class SharedRegistry:
    """What every replica of a test shares: database, artifacts, prediction log."""

    db_url: str
    artifacts: Path
    log_dir: Path
    home: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
        env |= {
            "SHIPYARD_DB_URL": self.db_url,
            "SHIPYARD_ARTIFACTS": str(self.artifacts),
            "SHIPYARD_HOME": str(self.home),
            "SHIPYARD_USER": "admin",
        }
        return env

    def open_store(self) -> Store:
        return Store(self.db_url, str(self.artifacts), creator="admin").open()


@dataclass
class Replica:
    """One ``shipyard serve`` process."""

    shared: SharedRegistry
    name: str
    args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def err_path(self) -> Path:
        return self.shared.home / f"{self.name}.err"

    # Generous: replicas start together and each imports scikit-learn and onnxruntime and
    # loads its models; on two busy cores that took over 90 s here.
    def start(self, timeout: float = 180) -> Replica:
        self.launch()
        return self.wait(timeout)

    def launch(self) -> None:
        """Start the process; ``wait`` until it answers (start several, then wait)."""
        command = [
            *(sys.executable, "-m", "shipyard", "serve", "--no-auth"),
            *("--port", str(self.port), "--models", "churn", "--replica", self.name),
            *("--log-dir", str(self.shared.log_dir), "--compactor", "thread"),
            *self.args,
        ]
        self.err_path.write_bytes(b"")
        with self.err_path.open("ab") as err:
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=err, env=self.shared.env()
            )

    def wait(self, timeout: float = 180) -> Replica:
        for _ in range(3):
            assert self.process is not None
            try:
                wait_live(self.url, self.process, self.err_path, timeout, path="/v2/health/ready")
                return self
            except AssertionError:
                # The free port was taken while the server imported (tests run beside other
                # servers): another port. Any other failure is the test's.
                if "address already in use" not in self.err_path.read_text():
                    raise
                self.port = free_port()
                self.launch()
        raise AssertionError(f"replica {self.name}: no free port after 3 tries")

    def stop(self) -> bool:
        """SIGTERM; True when the server then ended cleanly (it compacts its log on the way
        out; uvicorn re-raises the signal after its shutdown, so -SIGTERM is clean too)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(120) in (0, -signal.SIGTERM)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def metrics(self) -> dict[str, float]:
        return scrape(self.url)


def scrape(url: str) -> dict[str, float]:
    """``/metrics`` as ``{"name{label=value,...}": value}``, parsed by prometheus-client."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def answered(metrics: dict[str, float], status: str = "200") -> float:
    """``shipyard_requests_total`` of churn over every version and endpoint, for ``status``."""
    return sum(
        value
        for key, value in metrics.items()
        if key.startswith("shipyard_requests_total{") and f"status={status}" in key
    )


class Load:
    """Requests from threads, round robin over ``urls``, until ``running`` ends."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.ok: dict[str, int] = dict.fromkeys(urls, 0)
        self.ids: list[str] = []
        self.failed: list[tuple[str, str]] = []  # (url, what went wrong)
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _worker(self, offset: int) -> None:
        with httpx.Client(timeout=30) as client:
            i = offset
            while not self._stop.is_set():
                url = self.urls[i % len(self.urls)]
                i += 1
                try:
                    r = client.post(f"{url}/models/churn/predict", json={"records": [GOOD]})
                except httpx.TransportError as exc:
                    with self._lock:
                        self.failed.append((url, repr(exc)))
                    time.sleep(0.01)
                    continue
                with self._lock:
                    if r.status_code == 200:
                        self.ok[url] += 1
                        self.ids.extend(r.json()["prediction_ids"])
                    else:
                        self.failed.append((url, f"{r.status_code} {r.text[:200]}"))

    @contextlib.contextmanager
    def running(self, threads: int) -> Iterator[Load]:
        workers = [threading.Thread(target=self._worker, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        try:
            yield self
        finally:
            self._stop.set()
            for w in workers:
                w.join()
