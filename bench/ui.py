"""Web UI page and API times on a store of realistic size, on SQLite and PostgreSQL.

    python bench/ui.py seed --db sqlite|postgres [--models 1000 --versions 20 --days 365
                                                 --predictions 10000000 --out DIR]
    python bench/ui.py run --db sqlite|postgres --store DIR [--requests 200]

``seed`` builds a store of 1,000 models x 20 versions with a year of hourly monitoring
results (~48M rows) and 10M logged predictions (see ``ui_seed``); keep ``--out`` outside the
repository. ``run`` starts the UI in a subprocess (``shipyard ui`` when the CLI has it, else
``create_ui`` under uvicorn from this file's ``serve`` command), logs in as admin through the
login form, and times ``--requests`` requests per page and API route of the URL contract
(random models, versions and logged prediction ids, after a warm-up), interleaved across
routes so the machine's noise falls on all alike. It prints p50 / p95 / max per route and
PASS / FAIL against the 200 ms p95 goal, and writes ``bench/results/ui-<db>.json``. A route
the app does not have yet is reported as "not built".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

GOAL_MS = 200.0
RESULTS = Path(__file__).parent / "results"
NOT_BUILT = "There is no page at"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    seed = commands.add_parser("seed", help="build the benchmark store")
    seed.add_argument("--db", choices=["sqlite", "postgres"], required=True)
    seed.add_argument("--models", type=int, default=1000)
    seed.add_argument("--versions", type=int, default=20)
    seed.add_argument("--days", type=int, default=365)
    seed.add_argument("--predictions", type=int, default=10_000_000)
    seed.add_argument("--perf-every", type=int, default=4, help="windows per performance interval")
    seed.add_argument("--seed", type=int, default=12)
    seed.add_argument("--pg-database", default="shipyard_ui_bench")
    seed.add_argument("--out", type=Path, help="default: /work/ui-bench-data/<db>")
    run = commands.add_parser("run", help="time the pages and APIs")
    run.add_argument("--db", choices=["sqlite", "postgres"], required=True)
    run.add_argument("--store", type=Path, help="the seeded folder (default as for seed)")
    run.add_argument("--requests", type=int, default=200, help="timed requests per route")
    run.add_argument("--warmup", type=int, default=5)
    run.add_argument("--port", type=int, default=0, help="default: a free port")
    run.add_argument("--no-pin", action="store_true", help="do not pin server and client")
    run.add_argument("--launcher", action="store_true", help="use create_ui, not 'shipyard ui'")
    run.add_argument("--json", type=Path, help="default: bench/results/ui-<db>.json")
    index = commands.add_parser("index", help="build the prediction-id index of an older seed")
    index.add_argument("--store", type=Path, required=True)
    verdicts = commands.add_parser("verdicts", help="add drift verdicts to an older seed")
    verdicts.add_argument("--store", type=Path, required=True)
    serve = commands.add_parser("serve", help=argparse.SUPPRESS)  # the fallback launcher
    serve.add_argument("--store", type=Path, required=True)
    serve.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.command == "seed":
        _seed(args)
    elif args.command == "run":
        _run(args)
    elif args.command == "index":
        from ui_predlog import index_log

        print(f"indexed {index_log(args.store.absolute() / 'predlog')} days")
    elif args.command == "verdicts":
        _verdicts(args.store.absolute())
    else:
        _serve(args.store, args.port)


def _default_out(db: str) -> Path:
    return Path("/work/ui-bench-data") / db


def _seed(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from ui_seed import SeedConfig, seed

    config = SeedConfig(
        db=args.db,
        out=(args.out or _default_out(args.db)).absolute(),
        models=args.models,
        versions=args.versions,
        days=args.days,
        predictions=args.predictions,
        perf_every=args.perf_every,
        seed=args.seed,
        pg_database=args.pg_database,
    )
    start = time.perf_counter()
    summary = seed(config)
    total = time.perf_counter() - start
    console = Console(width=max(110, Console().width))
    table = Table(title=f"Seeded {config.out} ({args.db}) in {total:.0f} s")
    table.add_column("what")
    table.add_column("rows", justify="right")
    for name, n in summary["counts"].items():
        table.add_row(name, f"{n:,}")
    log = summary["log"]
    table.add_row("logged predictions", f"{log['predictions']:,}")
    table.add_row("labels", f"{log['labels']:,}")
    table.add_row("Parquet files", f"{log['files']:,} ({log['bytes'] / 1e9:.2f} GB)")
    console.print(table)
    console.print({k: f"{v} s" for k, v in summary["seconds"].items()})
    console.print(f"disk: {_du(config.out) / 1e9:.2f} GB under {config.out}")


def _verdicts(store_dir: Path) -> None:
    """Add the per-feature ``drift`` rows to a store seeded before ``ui_series`` wrote them."""
    sys.path.insert(0, str(Path(__file__).parent))
    from ui_series import add_drift_verdicts

    summary_path = store_dir / "seed.json"
    summary = json.loads(summary_path.read_text())
    start = time.perf_counter()
    if summary["db_url"].startswith("sqlite"):
        added = add_drift_verdicts("", str(store_dir / "shipyard.db"))
    else:
        config = summary["config"]
        conninfo = f"host=127.0.0.1 port=5432 user=postgres dbname={config['pg_database']}"
        added = add_drift_verdicts(conninfo, None)
    seconds = time.perf_counter() - start
    summary["counts"]["monitoring_results"] += added
    summary["seconds"]["drift verdicts (added later)"] = round(seconds, 1)
    summary_path.write_text(json.dumps(summary, indent=1))
    print(f"added {added:,} drift verdict rows in {seconds:.0f} s")


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- timing ---------------------------------------------------------------------------------


def routes(summary: dict[str, Any], rng: random.Random) -> dict[str, Callable[[], str]]:
    """Each timed route of the URL contract, as a function drawing its next URL."""
    models: list[str] = summary["models"]
    versions = int(summary["config"]["versions"])
    ids: list[str] = summary["sample_prediction_ids"]
    teams = sorted({m.split("-")[0] for m in models})

    def model() -> str:
        return rng.choice(models)

    def version() -> str:
        return f"{model()}/versions/{rng.randint(1, versions)}"

    def search() -> str:
        return f"?q={rng.choice(models).split('-')[1][:5]}"

    return {
        "shell: login page (no data)": lambda: "/ui/login",
        "shell: /api/me (no data)": lambda: "/api/me",
        "catalogue page /ui/": lambda: "/ui/",
        "catalogue page, team filter, page 2": lambda: f"/ui/?team={rng.choice(teams)}&page=2",
        "catalogue search page /ui/?q=": lambda: f"/ui/{search()}",
        "catalogue API /api/models": lambda: "/api/models",
        "catalogue search API /api/models?q=": lambda: f"/api/models{search()}",
        "model page": lambda: f"/ui/models/{model()}",
        "model API": lambda: f"/api/models/{model()}",
        "version page": lambda: f"/ui/models/{version()}",
        "version API": lambda: f"/api/models/{version()}",
        "monitoring page, 30 days": lambda: f"/ui/models/{model()}/monitoring",
        "monitoring page, 365 days": lambda: f"/ui/models/{model()}/monitoring?days=365",
        "monitoring API, 30 days": lambda: f"/api/models/{model()}/monitoring",
        "monitoring API, 365 days": lambda: f"/api/models/{model()}/monitoring?days=365",
        "trace page": lambda: f"/ui/trace/{rng.choice(ids)}",
        "trace API": lambda: f"/api/trace/{rng.choice(ids)}",
        "audit page": lambda: "/ui/audit",
        "audit API": lambda: "/api/audit",
        "approvals page": lambda: "/ui/approvals",
        "approvals API": lambda: "/api/approvals",
    }


def _run(args: argparse.Namespace) -> None:
    store_dir = (args.store or _default_out(args.db)).absolute()
    summary = json.loads((store_dir / "seed.json").read_text())
    port = args.port or _free_port()
    console = Console(width=max(110, Console().width))
    server = _start_server(store_dir, summary, port, args.launcher, not args.no_pin)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, server)
        if not args.no_pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {0})  # the server runs on core 1
        with httpx.Client(base_url=base, timeout=60) as client:
            _log_in(client, "admin", summary["password"])
            results = _time_routes(client, summary, args.requests, args.warmup, console)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    report = {
        "db": args.db,
        "store": str(store_dir),
        "seeded": summary["counts"],
        "log": summary["log"],
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average": os.getloadavg(),
        "requests_per_route": args.requests,
        "goal_p95_ms": GOAL_MS,
        "server": [str(a) for a in server.args],
        "routes": results,
    }
    out = args.json or RESULTS / f"ui-{args.db}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    _print(console, report)
    console.print(f"written {out}")


def _start_server(
    store_dir: Path, summary: dict[str, Any], port: int, launcher: bool, pin: bool
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(store_dir / "home"),
        "SHIPYARD_DB_URL": summary["db_url"],
        "SHIPYARD_ARTIFACTS": summary["artifacts"],
    }
    shipyard = str(Path(sys.executable).parent / "shipyard")
    usage = "" if launcher else _ui_usage(shipyard, env)
    if usage:
        command = [shipyard, "ui", "--host", "127.0.0.1", "--port", str(port)]
        if "--log-dir" in usage:
            command += ["--log-dir", summary["predlog"]]
    else:
        command = [
            sys.executable,
            __file__,
            "serve",
            "--store",
            str(store_dir),
            "--port",
            str(port),
        ]
    if pin and shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        command = ["taskset", "-c", "1", *command]
    log = open(store_dir / "ui-server.log", "wb")  # noqa: SIM115 (the child keeps it open)
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def _ui_usage(shipyard: str, env: dict[str, str]) -> str:
    """``shipyard ui --help``, or "" when the CLI has no ``ui`` command."""
    try:
        done = subprocess.run(
            [shipyard, "ui", "--help"], env=env, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def _serve(store_dir: Path, port: int) -> None:
    """The fallback launcher: ``create_ui`` on the seeded store under one uvicorn worker."""
    import uvicorn

    from shipyard.store import Store
    from shipyard.ui import create_ui

    summary = json.loads((store_dir / "seed.json").read_text())
    store = Store(summary["db_url"], summary["artifacts"], creator="admin").open()
    app = create_ui(store, predlog=Path(summary["predlog"]))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"The UI server exited with {server.returncode}; see ui-server.log.")
        try:
            if httpx.get(f"{base}/ui/login", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit("The UI server did not answer /ui/login within 120 s.")


def _log_in(client: httpx.Client, user: str, password: str) -> None:
    """The login form, as a browser sends it: the CSRF cookie's value in ``csrf_token``."""
    client.get("/ui/login").raise_for_status()
    token = client.cookies.get("shipyard_csrf")
    if not token:
        raise SystemExit("GET /ui/login set no shipyard_csrf cookie.")
    answer = client.post(
        "/ui/login",
        data={"user": user, "password": password, "csrf_token": token, "next": "/ui/"},
    )
    if answer.status_code != 303:
        raise SystemExit(f"Logging in as {user} answered {answer.status_code}, not 303.")
    me = client.get("/api/me")
    if me.status_code != 200:
        raise SystemExit(f"/api/me after logging in answered {me.status_code}.")


def _time_routes(
    client: httpx.Client, summary: dict[str, Any], n: int, warmup: int, console: Console
) -> dict[str, dict[str, Any]]:
    rng = random.Random(1)
    table = routes(summary, rng)
    results: dict[str, dict[str, Any]] = {}
    live: list[str] = []
    for name, url in table.items():
        statuses = []
        for _ in range(warmup):
            answer = client.get(url())
            statuses.append(answer.status_code)
            if answer.status_code == 404 and NOT_BUILT in answer.text:
                results[name] = {"built": False}
                break
        else:
            results[name] = {"built": True, "times_ms": [], "statuses": {}, "example": url()}
            live.append(name)
    with console.status("timing") as status:
        for i in range(n):
            rng.shuffle(live)
            for name in live:
                url = table[name]()
                start = time.perf_counter()
                answer = client.get(url)
                elapsed = (time.perf_counter() - start) * 1000
                answer.read()
                entry = results[name]
                entry["times_ms"].append(round(elapsed, 2))
                key = str(answer.status_code)
                entry["statuses"][key] = entry["statuses"].get(key, 0) + 1
            status.update(f"timing: round {i + 1} of {n}")
    for entry in results.values():
        if entry.get("built"):
            times = entry["times_ms"]
            entry.update(_stats(times))
            entry["pass"] = entry["p95_ms"] <= GOAL_MS and set(entry["statuses"]) <= {"200"}
    return results


def _stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "n": len(times),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "max_ms": round(ordered[-1], 1),
    }


def _print(console: Console, report: dict[str, Any]) -> None:
    table = Table(
        title=f"UI on {report['db']}, {report['requests_per_route']} requests per route "
        f"(load {report['load_average'][0]:.1f}), goal p95 <= {GOAL_MS:.0f} ms"
    )
    for column in ("route", "p50 ms", "p95 ms", "max ms", "statuses", "goal"):
        table.add_column(column, justify="left" if column in ("route", "goal") else "right")
    for name, entry in report["routes"].items():
        if not entry["built"]:
            table.add_row(name, "", "", "", "", "not built")
            continue
        statuses = ", ".join(f"{k} x{v}" for k, v in sorted(entry["statuses"].items()))
        verdict = "[green]PASS[/]" if entry["pass"] else "[red]FAIL[/]"
        table.add_row(
            name,
            f"{entry['p50_ms']:.1f}",
            f"{entry['p95_ms']:.1f}",
            f"{entry['max_ms']:.1f}",
            statuses,
            verdict,
        )
    console.print(table)


if __name__ == "__main__":
    main()
