"""A soak: one ``shipyard serve`` under a steady load for a long time, watched for errors,
memory growth and lost predictions.

    .venv/bin/python bench/soak/run.py [--duration 600] [--rate 200] [--concurrency 8]
        [--max-rows 4] [--sample 5] [--warmup 60]

1. Fits a small churn pipeline (3 numeric columns and one categorical, generated with a fixed
   seed), registers it with its ONNX export in a temporary Shipyard home, approves and
   promotes it (no gate record: the gates are not what this measures).
2. Starts ``python -m shipyard serve --no-auth`` on it as a real process, with the prediction
   log on (the default compactor process) in the temporary folder.
3. Sends ``--rate`` requests per second for ``--duration`` seconds from ``--concurrency``
   keep-alive connections (a minimal asyncio HTTP/1.1 client: httpx would cost more CPU than the
   server on a busy machine), each request 1 to ``--max-rows`` rows (cycling),
   on a fixed schedule (open loop: a slow answer does not lower the rate asked for; requests
   that start more than 1 s after their slot are counted as late; nothing starts after the
   duration, so a generator that falls behind sends fewer than asked, and that is a failed
   check). Every answer must be 200 with one prediction id per row.
4. Samples the resident memory (``/proc/PID/status`` VmRSS) of the server and of its compactor
   process every ``--sample`` seconds, and shows a progress bar with the rate, errors and RSS.
5. Reads the server's ``/metrics`` (prometheus_client's parser): requests counted == requests
   sent, no record dropped, the log writable. Stops the server (SIGINT: it compacts the
   whole log on the way out) and counts the log: rows and distinct prediction ids == rows
   answered, and the set of ids equal to the set answered.
6. Prints errors, achieved rate, p50/p99 latency, RSS after the warm-up against the last
   minute (growth and least-squares slope in MB per hour after the warm-up), the log counts,
   and a verdict; writes everything to bench/results/soak-<timestamp>.json.

The default is the issue's 10 minutes; CI never runs it (``--duration 20`` is a quick check).
Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from churn_data import churn_pipeline, labelled_churn  # noqa: E402 - tests/ is on the path now

RESULTS = ROOT / "bench" / "results"
MODEL = "soak"
#: A request that starts this many seconds after its slot is counted late (the generator or
#: the server fell behind the rate asked for).
LATE = 1.0
console = Console()


# -- the model ------------------------------------------------------------------------------
def register_model(home: Path) -> list[dict[str, Any]]:
    """Register, approve and promote the pipeline; returns 64 unseen rows as JSON records."""
    from shipyard import Client, Settings
    from shipyard.config import ProjectConfig
    from shipyard.store import Store

    X, y = labelled_churn(2_000, seed=1)
    model = churn_pipeline(X, y)
    project = ProjectConfig.model_validate({"gates": {"require": False}})
    store = Store.from_settings(Settings(home=home, user="admin")).open()
    admin = Client(Settings(home=home, user="admin"), store=store, project=project).open()
    admin.users.set_role("bob", "approver", actor="admin")
    alice = Client(Settings(home=home, user="alice"), store=store, project=project).open()
    bob = Client(Settings(home=home, user="bob"), store=store, project=project).open()
    mv = alice.register(model, name=MODEL, X_train=X, y_train=y, onnx=True)
    bob.approve(MODEL, mv.version, reason="soak")
    alice.promote(MODEL, mv.version, reason="soak")
    store.close()
    rows, _ = labelled_churn(64, seed=2)
    return [
        {"age": int(r.age), "income": float(r.income), "tenure": float(r.tenure), "plan": r.plan}
        for r in rows.itertuples()
    ]


# -- the server -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(work: Path, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SHIPYARD_HOME=str(work / "home"), SHIPYARD_USER="admin")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "shipyard", "serve", "--no-auth", "--port", str(port)]
    cmd += ["--models", MODEL, "--log-dir", str(work / "log")]
    err = (work / "server.err").open("wb")
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {(work / 'server.err').read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not become ready in 120 s")


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def metrics(url: str) -> dict[str, float]:
    """Each sample summed over its labels, by sample name."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for s in family.samples:
            if s.name == "shipyard_requests_total" and s.labels.get("status") != "200":
                out["refused"] = out.get("refused", 0.0) + s.value
            out[s.name] = out.get(s.name, 0.0) + s.value
    return out


# -- the load -------------------------------------------------------------------------------
@dataclass
class Load:
    sent: int = 0
    ok: int = 0
    errors: int = 0
    late: int = 0
    rows: int = 0
    ids: set[str] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)
    first_errors: list[str] = field(default_factory=list)


class Connection:
    """One HTTP/1.1 keep-alive connection speaking just enough of the protocol for this load:
    a request written whole, the answer read by its Content-Length. httpx costs ~1 ms of CPU
    a request, which on a busy 2-core machine makes the load generator, not the server, the
    bottleneck."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def request_bytes(body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST /models/{MODEL}/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def drive(
    port: int, bodies: list[dict[str, Any]], args: argparse.Namespace, load: Load, stop_at: float
) -> None:
    requests = [(request_bytes(b), len(b["records"])) for b in bodies]
    t0 = time.monotonic()

    async def worker(w: int) -> None:
        conn = Connection("127.0.0.1", port)
        k = 0
        try:
            while True:
                slot = k * args.concurrency + w
                k += 1
                due = t0 + slot / args.rate
                now = time.monotonic()
                if due >= stop_at or now >= stop_at:
                    return
                if due > now:
                    await asyncio.sleep(due - now)
                elif now - due > LATE:
                    load.late += 1
                request, n = requests[slot % len(requests)]
                load.sent += 1
                start = time.perf_counter()
                try:
                    status, answer = await conn.post(request)
                    ids = json.loads(answer).get("prediction_ids") if status == 200 else None
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    conn.close()
                    load.errors += 1
                    if len(load.first_errors) < 5:
                        load.first_errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                load.latencies.append(time.perf_counter() - start)
                if ids is None or len(ids) != n:
                    load.errors += 1
                    if len(load.first_errors) < 5:
                        load.first_errors.append(f"{status}: {answer[:200]!r}")
                    continue
                load.ok += 1
                load.rows += n
                load.ids.update(ids)
        finally:
            conn.close()

    await asyncio.gather(*(worker(w) for w in range(args.concurrency)))


async def soak(
    url: str,
    server: subprocess.Popen[bytes],
    bodies: list[dict[str, Any]],
    args: argparse.Namespace,
) -> tuple[Load, list[tuple[float, float, float]]]:
    """The load and the RSS samples ``(seconds, server MB, compactor MB)``."""
    load = Load()
    samples: list[tuple[float, float, float]] = []
    start = time.monotonic()
    stop_at = start + args.duration
    port = int(url.rsplit(":", 1)[1])
    driver = asyncio.create_task(drive(port, bodies, args, load, stop_at))
    columns = [
        TextColumn("[bold]soak"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    ]
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("soak", total=args.duration, status="")
        while not driver.done():
            now = time.monotonic() - start
            kids = children(server.pid)
            sample = (now, rss_mb(server.pid), sum(rss_mb(k) for k in kids))
            samples.append(sample)
            rate = load.ok / now if now > 0 else 0.0
            progress.update(
                task,
                completed=min(now, args.duration),
                status=f"{rate:,.0f} req/s, {load.errors} errors, {load.late} late, "
                f"server {sample[1]:.0f} MB, compactor {sample[2]:.0f} MB",
            )
            await asyncio.wait({driver}, timeout=args.sample)
        await driver
    return load, samples


def slope_mb_per_hour(points: list[tuple[float, float]]) -> float:
    if len(points) < 3:
        return 0.0
    t = np.array([p[0] for p in points])
    m = np.array([p[1] for p in points])
    return float(np.polyfit(t, m, 1)[0] * 3600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--concurrency", type=int, default=8, help="connections")
    parser.add_argument("--max-rows", type=int, default=4, help="rows per request: 1..N")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="seconds before the memory baseline"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shipyard-soak-"))
    console.print(f"work folder: {work}")
    rows = register_model(work / "home")
    bodies = [
        {"records": [rows[(i + j) % len(rows)] for j in range(1 + i % args.max_rows)]}
        for i in range(len(rows))
    ]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(work, port)
    try:
        load, samples = asyncio.run(soak(url, server, bodies, args))
        seen = metrics(url)
    finally:
        server.send_signal(signal.SIGINT)  # a clean stop compacts the whole log
        try:
            server.wait(120)
        except subprocess.TimeoutExpired:
            server.kill()
    from shipyard.predlog import query

    counted = query(
        work / "log",
        "SELECT count(*) AS n, count(DISTINCT prediction_id) AS d FROM predictions "
        "WHERE status = 'ok'",
        model=MODEL,
    )
    logged_ids = set(
        query(work / "log", "SELECT prediction_id FROM predictions", model=MODEL)["prediction_id"]
    )
    logged, distinct = int(counted["n"].iloc[0]), int(counted["d"].iloc[0])

    warm = [s for s in samples if s[0] >= min(args.warmup, args.duration / 4)]
    base_window = [s for s in warm if s[0] <= warm[0][0] + 60] if warm else []
    last_window = [s for s in warm if s[0] >= samples[-1][0] - 60] if warm else []
    total = [(s[0], s[1] + s[2]) for s in warm]
    result: dict[str, Any] = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "args": vars(args),
        "requests": load.sent,
        "ok": load.ok,
        "errors": load.errors,
        "first_errors": load.first_errors,
        "late_starts": load.late,
        "asked": int(args.duration * args.rate),
        "achieved_rate": load.ok / args.duration,
        "p50_ms": 1000 * statistics.median(load.latencies) if load.latencies else None,
        "p99_ms": 1000 * float(np.percentile(load.latencies, 99)) if load.latencies else None,
        "rows_answered": load.rows,
        "rows_logged": logged,
        "distinct_ids_logged": distinct,
        "ids_equal": logged_ids == load.ids,
        "metrics_requests": seen.get("shipyard_requests_total"),
        "metrics_refused": seen.get("refused", 0.0),
        "metrics_dropped": seen.get("shipyard_prediction_log_dropped_total"),
        "metrics_writable": seen.get("shipyard_prediction_log_writable"),
        "rss_server_mb_after_warmup": statistics.median(s[1] for s in base_window)
        if base_window
        else None,
        "rss_server_mb_last_minute": statistics.median(s[1] for s in last_window)
        if last_window
        else None,
        "rss_compactor_mb_after_warmup": statistics.median(s[2] for s in base_window)
        if base_window
        else None,
        "rss_compactor_mb_last_minute": statistics.median(s[2] for s in last_window)
        if last_window
        else None,
        "rss_total_slope_mb_per_hour": slope_mb_per_hour(total),
        "rss_samples": samples,
    }
    base, last = result["rss_server_mb_after_warmup"], result["rss_server_mb_last_minute"]
    growth = (last - base) if base and last else 0.0
    result["rss_server_growth_mb"] = growth
    c_base, c_last = result["rss_compactor_mb_after_warmup"], result["rss_compactor_mb_last_minute"]
    c_growth = (c_last - c_base) if c_base and c_last else 0.0
    result["rss_compactor_growth_mb"] = c_growth
    checks = {
        "0 errors": load.errors == 0,
        "the rate asked for was sent (>= 99%)": load.sent >= 0.99 * args.duration * args.rate,
        "log rows == rows answered": logged == distinct == load.rows,
        "logged ids == answered ids": result["ids_equal"],
        "/metrics requests == sent": result["metrics_requests"] == load.sent,
        "nothing dropped": not result["metrics_dropped"],
        "memory flat (server grew < 5% or 10 MB)": base is not None
        and (growth < 10 or growth < 0.05 * base),
        "memory flat (compactor grew < 5% or 10 MB)": c_base is None
        or (c_growth < 10 or c_growth < 0.05 * c_base),
    }
    result["checks"] = checks
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"soak-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(result, indent=1))

    table = Table(title=f"soak: {args.duration:.0f} s at {args.rate:.0f} req/s")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in (
        "asked",
        "requests",
        "errors",
        "late_starts",
        "achieved_rate",
        "p50_ms",
        "p99_ms",
        "rows_answered",
        "rows_logged",
        "distinct_ids_logged",
        "metrics_requests",
        "metrics_dropped",
        "rss_server_mb_after_warmup",
        "rss_server_mb_last_minute",
        "rss_server_growth_mb",
        "rss_compactor_mb_after_warmup",
        "rss_compactor_mb_last_minute",
        "rss_compactor_growth_mb",
        "rss_total_slope_mb_per_hour",
    ):
        value = result[key]
        table.add_row(key, f"{value:,.2f}" if isinstance(value, float) else str(value))
    console.print(table)
    for name, ok in checks.items():
        console.print(f"{'[green]PASS' if ok else '[red]FAIL'}[/] {name}")
    if load.first_errors:
        console.print("first errors:", load.first_errors)
    console.print(f"results: {out}")
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
