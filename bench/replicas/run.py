"""Throughput of ``shipyard serve --workers 1`` against ``--workers 2`` on the same machine.

    .venv/bin/python bench/replicas/run.py [--duration 10] [--repeats 3] [--connections 32]

Needs ``wrk`` (``apt-get install wrk``; ``bash bench/peers.sh serving`` installs it too).

1. Fits a small churn pipeline on generated data (fixed seed: 3 numeric columns and a
   3-level categorical, StandardScaler + OneHotEncoder -> LogisticRegression), registers and
   promotes it with its ONNX export in a temporary Shipyard home (SQLite).
2. Starts ``shipyard serve --workers 1`` and ``--workers 2`` (``--runtime onnx --no-auth``,
   prediction log ON, nothing pinned: the workers and wrk share every core, as they would on
   a 2-core host) and drives each with ``wrk -t1 -cC -dDs`` posting one-row records to
   ``/models/churn/predict``. The server not measured idles (it is not frozen with SIGSTOP:
   uvicorn's supervisor would take its frozen workers for hung ones and restart them).
3. Rounds alternate 1 and 2 workers, ``--repeats`` times. Prints median req/s and p50/p99
   per setting, the 2-vs-1 ratio taken within each round then the median, the cores and the
   load average seen; checks after each run that ``/metrics`` counts as many answered
   requests as wrk reports (both workers' counts added up; give or take the requests in
   flight when wrk stopped), and writes
   ``bench/results/replicas-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from churn_data import churn_pipeline, labelled_churn

console = Console()
HERE = Path(__file__).resolve().parent
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"records": [{"age": 40, "income": 52000.0, "tenure": 2.5, "plan": "pro"}]}'
"""


def build_home(home: Path) -> None:
    """Register and promote a churn pipeline in ``home`` (ONNX export included)."""
    from shipyard import Client, Settings
    from shipyard.config import ProjectConfig
    from shipyard.packaging import prepare_archive
    from shipyard.registry import Registry

    X, y = labelled_churn(2000, seed=0)
    pipe = churn_pipeline(X, y)
    prepared = prepare_archive(pipe, X_train=X, y_train=y, X_eval=X, y_eval=y)
    no_gates = ProjectConfig.model_validate({"gates": {"require": False}})
    client = Client(Settings(home=home, user="admin"), project=no_gates).open()
    try:
        Registry(client.store, no_gates).register(prepared, name="churn", actor="admin")
        Registry(client.store, no_gates).promote("churn", 1, actor="admin", to="staging")
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``shipyard serve --workers N`` in its own process group."""

    def __init__(self, workers: int, home: Path, logfile: Path) -> None:
        self.workers, self.port, self.logfile = workers, free_port(), logfile
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
        self.env |= {"SHIPYARD_HOME": str(home), "SHIPYARD_USER": "admin"}
        self.cmd = [
            *(sys.executable, "-m", "shipyard", "serve", "--workers", str(workers)),
            *("--port", str(self.port), "--no-auth", "--runtime", "onnx", "--models", "churn"),
            *("--alias", "staging", "--log-dir", str(home / f"predlog-{workers}")),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> None:
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            stdout=self.logfile.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"--workers {self.workers} exited:\n{self.logfile.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        raise SystemExit(f"--workers {self.workers} not ready after {timeout}s")

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        self.signal(signal.SIGTERM)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)

    def answered(self) -> float:
        """Requests answered, from ``/metrics`` (prometheus-client's parser)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as r:
            text = r.read().decode()
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "shipyard_requests_total" and s.labels.get("status") == "200"
        )


def _seconds(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def run_wrk(url: str, lua: Path, connections: int, duration: int) -> dict[str, float]:
    out = subprocess.run(
        [
            *("wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s"),
            "--latency",
            *("-s", str(lua), f"{url}/models/churn/predict"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _seconds(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _seconds(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return {"requests": requests, "rps": rps, "p50_ms": p50 * 1000, "p99_ms": p99 * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of 1 then 2 workers")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-replicas-"))
    lua = work / "post.lua"
    lua.write_text(LUA)
    console.print(f"[bold]Registering the model[/] in {work}")
    build_home(work / "home")
    servers = {w: Server(w, work / "home", work / f"serve-{w}.log") for w in (1, 2)}
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    loads: list[float] = []
    try:
        for server in servers.values():
            server.start()
        with Progress(console=console) as progress:
            task = progress.add_task("wrk runs", total=2 * args.repeats)
            for _ in range(args.repeats):
                for workers, server in servers.items():
                    before = server.answered()
                    run_wrk(server.url, lua, args.connections, 2)  # warm-up, not counted
                    time.sleep(1.0)  # both workers' warm-up counts published
                    warm = server.answered()
                    result = run_wrk(server.url, lua, args.connections, args.duration)
                    time.sleep(1.0)  # the other worker publishes its counts every 0.5 s
                    counted = server.answered() - warm
                    # wrk counts the answers it read; up to one request per connection
                    # was still in flight when it stopped, and the server counted it.
                    if not 0 <= counted - result["requests"] <= 2 * args.connections:
                        raise SystemExit(
                            f"--workers {workers}: /metrics counted {counted:.0f} requests, "
                            f"wrk made {result['requests']} (before: {before:.0f})"
                        )
                    runs[workers].append(result)
                    loads.append(os.getloadavg()[0])
                    progress.advance(task)
    finally:
        for server in servers.values():
            server.stop()

    ratios = [b["rps"] / a["rps"] for a, b in zip(runs[1], runs[2], strict=True)]
    summary: dict[str, Any] = {
        "cores": os.cpu_count(),
        "connections": args.connections,
        "duration_s": args.duration,
        "repeats": args.repeats,
        "load_average_1m_median": statistics.median(loads),
        "ratio_2_vs_1_median": statistics.median(ratios),
        "ratios": ratios,
    }
    for workers, results in runs.items():
        summary[f"workers_{workers}"] = {
            key: statistics.median(r[key] for r in results) for key in ("rps", "p50_ms", "p99_ms")
        }
        summary[f"workers_{workers}"]["runs"] = results
    console.print(f"cores {summary['cores']}, wrk -t1 -c{args.connections} -d{args.duration}s")
    for workers in (1, 2):
        s = summary[f"workers_{workers}"]
        console.print(
            f"--workers {workers}: median {s['rps']:.0f} req/s, p50 {s['p50_ms']:.2f} ms, "
            f"p99 {s['p99_ms']:.2f} ms"
        )
    console.print(
        f"2 vs 1 workers: {summary['ratio_2_vs_1_median']:.2f}x (median of "
        f"{', '.join(f'{r:.2f}' for r in ratios)}); 1-min load average seen "
        f"{summary['load_average_1m_median']:.1f}"
    )
    out = HERE.parent / "results" / f"replicas-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    console.print(f"Wrote {out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
