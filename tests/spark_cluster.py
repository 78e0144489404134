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
from collections.abc import Callable
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


#: JVM options for short-lived test JVMs: the C1 compiler only. Their work is start-up and
#: small jobs, for which C2's compilations (in each of the master, two workers, the driver and
#: the executors, on two cores) cost more CPU than they ever give back: the tests' Spark unit
#: took 223 test-seconds with C2 and 127-136 with C1 only. Long benchmarks leave it out.
QUICK_JVM = "-XX:TieredStopAtLevel=1"


@dataclass
class SparkStandalone:
    """A master and ``workers`` workers (each ``cores`` cores and ``memory`` for executors),
    logging under ``folder``. ``start`` waits until every worker has registered.

    ``java_options`` (e.g. ``QUICK_JVM``) reach every JVM of the cluster through
    ``JAVA_TOOL_OPTIONS``: the daemons and the executors they launch for any application."""

    folder: Path
    workers: int = 2
    cores: int = 1
    memory: str = "1g"
    daemon_memory: str = "256m"
    java_options: str = ""
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
            # No REST submission server (port 6066): applications here come by spark-submit's
            # RPC, as the README's path does.
            SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false",
        )
        if self.java_options:
            env["JAVA_TOOL_OPTIONS"] = self.java_options
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
        """The master first, the workers once it leads: a worker that finds no master (or
        one still in standby) tries again only 5-15 s later, a random wait on every start."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        self.ui_port = self.ui_port or _free_port()
        deadline = time.monotonic() + timeout
        try:
            self._launch(
                "master",
                [
                    "org.apache.spark.deploy.master.Master",
                    *("--host", "127.0.0.1", "--port", str(self.port)),
                    *("--webui-port", str(self.ui_port)),
                ],
            )
            self._wait(deadline, "the master leads", lambda s: s.get("status") == "ALIVE")
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
            self._wait(
                deadline,
                f"{self.workers} workers alive",
                lambda s: s.get("aliveworkers") == self.workers,
            )
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

    def _wait(self, deadline: float, what: str, done: Callable[[dict[str, object]], bool]) -> None:
        last = "no answer"
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"A Spark daemon exited with {process.returncode}: see {self.folder}/*.log"
                    )
            try:
                status = self.status()
                if done(status):
                    return
                last = f"master {status.get('status')}, {status.get('aliveworkers')} workers alive"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise RuntimeError(f"The Spark cluster did not start in time: not {what} ({last}).")

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
