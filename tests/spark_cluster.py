"""A real Spark standalone cluster on 127.0.0.1: one master and N workers started from pyspark's
own ``spark-class`` (``org.apache.spark.deploy.master.Master`` / ``...deploy.worker.Worker``),
as a user starts them with ``start-master.sh`` / ``start-worker.sh``. No download: pyspark's
jars hold both daemons. ``bench/engines`` starts the same cluster.

>>> cluster = SparkStandalone(tmp_path, workers=2).start()  # doctest: +SKIP
>>> cluster.master_url  # doctest: +SKIP
'spark://127.0.0.1:41234'
>>> cluster.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


def spark_home() -> Path:
    """pyspark's package folder: it holds ``bin/spark-class`` and the jars."""
    import pyspark

    return Path(pyspark.__file__).parent


def missing() -> str | None:
    """Why a standalone cluster cannot start here (no Java, no spark-class), or None."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (java on PATH or JAVA_HOME)"
    try:
        home = spark_home()
    except ImportError:
        return "pyspark is not installed"
    if not (home / "bin" / "spark-class").is_file():
        return f"{home / 'bin' / 'spark-class'} is missing"
    return None


def _die_with_parent() -> None:
    """Linux: the daemon gets SIGTERM when the process that started it dies, even by a signal
    (a killed test run leaves no JVM behind; spark-class execs java, which keeps it)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SparkStandalone:
    """A master and ``workers`` workers (each ``cores`` cores and ``memory`` for executors),
    logging under ``folder``. ``start`` waits until every worker has registered."""

    folder: Path
    workers: int = 2
    cores: int = 1
    memory: str = "1g"
    daemon_memory: str = "256m"
    port: int = 0
    ui_port: int = 0
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            SPARK_HOME=str(spark_home()),
            SPARK_LOCAL_IP="127.0.0.1",
            SPARK_LOG_DIR=str(self.folder / "logs"),
            SPARK_DAEMON_MEMORY=self.daemon_memory,
        )
        return env

    def _launch(self, name: str, args: list[str]) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [str(spark_home() / "bin" / "spark-class"), *args],
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stop() ends the JVM and the executors it started
            preexec_fn=_die_with_parent,
        )
        log.close()
        self._processes.append(process)

    def start(self, timeout: float = 90.0) -> SparkStandalone:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        self.ui_port = self.ui_port or _free_port()
        master = "org.apache.spark.deploy.master.Master"
        self._launch(
            "master",
            [
                master,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--webui-port",
                str(self.ui_port),
            ],
        )
        for i in range(self.workers):
            work = self.folder / f"worker{i}"
            work.mkdir(exist_ok=True)
            self._launch(
                f"worker{i}",
                [
                    "org.apache.spark.deploy.worker.Worker",
                    self.master_url,
                    *("--host", "127.0.0.1", "--cores", str(self.cores)),
                    *("--memory", self.memory, "--webui-port", "0", "--work-dir", str(work)),
                ],
            )
        try:
            self._wait(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def status(self) -> dict[str, object]:
        """The master's JSON status (``aliveworkers``, ``workers``, ``activeapps``...)."""
        url = f"http://127.0.0.1:{self.ui_port}/json/"
        with urllib.request.urlopen(url, timeout=2) as answer:
            status: dict[str, object] = json.load(answer)
        return status

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"A Spark daemon exited with {process.returncode}: see {self.folder}/*.log"
                    )
            try:
                status = self.status()
                if status.get("aliveworkers") == self.workers:
                    return
                last = f"{status.get('aliveworkers')} of {self.workers} workers alive"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.3)
        raise RuntimeError(f"The Spark cluster did not start in {timeout:.0f} s ({last}).")

    def stop(self) -> None:
        for process in reversed(self._processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._processes.clear()
