"""Serving throughput and latency: Shipyard (ONNX and native) against `mlflow models serve`.

    .venv/bin/python bench/serving/run.py [--duration 10] [--repeats 3] [--concurrency 1,8,32]

Needs the peers' venv and wrk (``bash bench/peers.sh``) and at least 2 CPU cores.

1. Builds the issue's pipeline on generated data (fixed seed): 14 numeric columns
   (StandardScaler) + 6 categorical (OneHotEncoder(handle_unknown="ignore",
   sparse_output=False)) -> HistGradientBoostingClassifier(max_iter=100). Saves it for MLflow
   (``mlflow.sklearn.save_model(..., serialization_format="cloudpickle")``, run with the peers'
   python on the same fitted pipeline, passed as a joblib file) and registers, approves and
   promotes it in a temporary Shipyard home (with its ONNX export).
2. Starts three servers, each pinned to core 1 (``taskset -c 1``): MLflow, ``shipyard serve
   --runtime onnx`` and ``shipyard serve --runtime native``, both with the prediction log ON
   and ``--no-auth``.
3. Drives each with ``taskset -c 0 wrk -t1 -cC -dDs --latency`` and a Lua script cycling
   single-row JSON bodies; order A B C per concurrency, repeated ``--repeats`` times. The
   servers not being measured are frozen (SIGSTOP) so their background threads cannot take
   the server core. Any non-2xx answer or socket error stops the benchmark.
4. Prints median req/s, p50, p99 per system and concurrency and the ratios against MLflow
   (taken within each round, then the median), and writes everything to
   bench/results/serving-<timestamp>.json.
5. The c=1 server overhead: at the start of every round, with every server frozen, this
   process times one-row predictions in process, pinned to the servers' core (ONNX: feed +
   run; native: ``LoadedModel.predict_proba`` with its schema check). The overhead is each
   round's c=1 p50 minus that round's in-process median, then the median over rounds: the
   machine's load changes from minute to minute, so a baseline taken once at the start
   says little about a c=1 run minutes later.
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
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
PEERS_BIN = ROOT / "bench" / ".peers" / "venv" / "bin"
SHIPYARD_BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
MODEL = "bench"
NUMERIC = [f"num_{i}" for i in range(14)]
CATEGORICAL = [f"cat_{i}" for i in range(6)]
SEED = 7
N_BODIES = 64
SERVER_CORE, WRK_CORE = "1", "0"

MLFLOW_SAVE = r"""
import sys, time, joblib, numpy as np, pandas as pd, mlflow.sklearn
model = joblib.load(sys.argv[1])
X = pd.read_pickle(sys.argv[3])
mlflow.sklearn.save_model(model, sys.argv[2], serialization_format="cloudpickle",
                          input_example=X.head(2))
"""


# -- model -------------------------------------------------------------------------------
def make_data(n: int = 20_000) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(SEED)
    num = rng.normal(size=(n, len(NUMERIC))) * rng.uniform(0.5, 20, len(NUMERIC)) + rng.uniform(
        -50, 50, len(NUMERIC)
    )
    X = pd.DataFrame(num, columns=NUMERIC)
    levels = [[f"{c}_v{k}" for k in range(3 + i)] for i, c in enumerate(CATEGORICAL)]
    for c, lv in zip(CATEGORICAL, levels, strict=True):
        X[c] = pd.Series(rng.choice(lv, size=n), dtype=object)
    z = (
        (num[:, 0] - num[:, 0].mean()) / num[:, 0].std()
        - 0.7 * ((num[:, 3] - num[:, 3].mean()) / num[:, 3].std())
        + 0.5 * np.sin(num[:, 5])
    )
    z += np.where(X["cat_0"] == "cat_0_v1", 0.8, 0.0) - np.where(X["cat_2"] == "cat_2_v0", 0.6, 0)
    y = pd.Series((z + rng.normal(scale=0.8, size=n) > 0).astype(int), name="churned")
    return X, y


def make_pipeline() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ]
    )
    return Pipeline(
        [("pre", pre), ("clf", HistGradientBoostingClassifier(max_iter=100, random_state=SEED))]
    )


def build_models(work: Path) -> tuple[Path, pd.DataFrame, dict[str, Any], Any]:
    """Fit once; save for MLflow (peers' python) and register in Shipyard. Returns the MLflow
    model folder, request rows, facts about the Shipyard archive, and a function timing the
    in-process baseline (``baseline(n)``)."""
    import joblib

    from shipyard import Client, Settings
    from shipyard.store import Store

    X, y = make_data()
    model = make_pipeline().fit(X, y)
    joblib.dump(model, work / "model.joblib")
    X.head(50).to_pickle(work / "X_head.pkl")
    mlflow_dir = work / "mlflow-model"
    script = work / "save_mlflow.py"
    script.write_text(MLFLOW_SAVE)
    subprocess.run(
        [
            str(PEERS_BIN / "python"),
            str(script),
            str(work / "model.joblib"),
            str(mlflow_dir),
            str(work / "X_head.pkl"),
        ],
        check=True,
        env=peers_env(),
        stdout=subprocess.DEVNULL,
    )

    home = work / "home"
    store = Store.from_settings(Settings(home=home, user="admin")).open()
    admin = Client(Settings(home=home, user="admin"), store=store).open()
    admin.users.set_role("bob", "approver", actor="admin")
    alice = Client(Settings(home=home, user="alice"), store=store).open()
    bob = Client(Settings(home=home, user="bob"), store=store).open()
    t0 = time.perf_counter()
    mv = alice.register(model, name=MODEL, X_train=X, y_train=y, onnx=True)
    register_s = time.perf_counter() - t0
    bob.approve(MODEL, mv.version, reason="serving bench")
    alice.promote(MODEL, mv.version, reason="serving bench")
    loaded = alice.load(f"{MODEL}@production")
    facts = {
        "register_s": register_s,
        "onnx": loaded.manifest.onnx
        and {k: v for k, v in loaded.manifest.onnx.items() if k != "inputs"},
    }
    store.close()  # the loaded model stays usable: it is in memory

    def baseline(n: int) -> dict[str, float]:
        return inprocess_baseline(loaded, X, n)

    # requests: rows not seen in training
    Xr, _ = make_data(20_000 + N_BODIES)
    return mlflow_dir, Xr.tail(N_BODIES).reset_index(drop=True), facts, baseline


def inprocess_baseline(loaded: Any, X: pd.DataFrame, n: int = 500) -> dict[str, float]:
    """Median microseconds of one-row predictions in this process (no HTTP)."""

    from threadpoolctl import threadpool_limits

    rows = [X.iloc[[i]].reset_index(drop=True) for i in range(50)]
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(SERVER_CORE)})  # the servers' core, as they are
    try:
        # One OpenMP thread, as in the servers (taskset before start: OpenMP sees one core);
        # this process started on every core, and two threads on one core spin-wait.
        with threadpool_limits(1):
            return _inprocess(loaded, rows, n)
    finally:
        os.sched_setaffinity(0, previous)


def _inprocess(loaded: Any, rows: list[pd.DataFrame], n: int) -> dict[str, float]:
    from shipyard.packaging import OnnxInput, OnnxPredictor

    out: dict[str, float] = {}

    def med(fn: Any) -> float:
        for r in rows[:10]:
            fn(r)
        ts = []
        for i in range(n):
            r = rows[i % len(rows)]
            t = time.perf_counter_ns()
            fn(r)
            ts.append(time.perf_counter_ns() - t)
        return statistics.median(ts) / 1000

    out["native_predict_proba_validated_us"] = med(lambda r: loaded.predict_proba(r))
    out["native_predict_proba_us"] = med(lambda r: loaded.predict_proba(r, validate=False))
    out["sklearn_pipeline_predict_proba_us"] = med(lambda r: loaded.model.predict_proba(r))
    summary = loaded.manifest.onnx or {}
    if "model.onnx" in loaded.archive.members and summary.get("inputs"):
        inputs = [OnnxInput(**item) for item in summary["inputs"]]
        pred = OnnxPredictor(loaded.archive.members["model.onnx"], inputs).load()
        out["onnx_feed_and_run_us"] = med(lambda r: pred.predict_arrays(pred.make_feed(r)))
        out["onnx_coerce_feed_and_run_us"] = med(
            lambda r: pred.predict_arrays(pred.make_feed(loaded.schema.coerce(r)))
        )
    return out


# -- servers -----------------------------------------------------------------------------
def peers_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{PEERS_BIN}:{env.get('PATH', '')}"
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], ready: str, url: str, logfile: Path
    ) -> None:
        self.name, self.cmd, self.env, self.ready, self.url = name, cmd, env, ready, url
        self.logfile = logfile
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> None:
        log = self.logfile.open("wb")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *self.cmd],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"{self.name} exited at start:\n{self.logfile.read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(self.ready, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        raise SystemExit(
            f"{self.name} not ready after {timeout}s:\n{self.logfile.read_text()[-3000:]}"
        )

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait()


LUA = """-- cycles single-row JSON bodies (generated by bench/serving/run.py)
local bodies = {%s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


def lua_string(s: str) -> str:
    return "[==[" + s + "]==]"


def write_lua(path: Path, bodies: list[str]) -> Path:
    path.write_text(LUA % ",\n".join(lua_string(b) for b in bodies))
    return path


def json_row(rows: pd.DataFrame, i: int) -> dict[str, Any]:
    rec = rows.iloc[i].to_dict()
    return {k: (float(v) if k in NUMERIC else str(v)) for k, v in rec.items()}


# -- wrk ---------------------------------------------------------------------------------
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot read latency {text!r}")
    return float(m.group(1)) * _UNIT[m.group(2)]


def run_wrk(url: str, lua: Path, conc: int, duration: int) -> dict[str, Any]:
    cmd = [
        "taskset",
        "-c",
        WRK_CORE,
        "wrk",
        "-t1",
        f"-c{conc}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(lua),
        "--latency",
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors:(.*)", out)
    bad = int(non2xx.group(1)) if non2xx else 0
    if bad or sock:
        raise SystemExit(f"wrk saw errors against {url} (c={conc}):\n{out}")
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "requests": total}


# -- main --------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument(
        "--systems",
        default="mlflow,shipyard-onnx,shipyard-native",
        help="also (diagnostics): shipyard-onnx-nolog, shipyard-native-nolog, "
        "shipyard-onnx-thread, shipyard-native-thread",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    concs = [int(c) for c in args.concurrency.split(",")]
    systems = args.systems.split(",")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs 2 cores: the servers on core 1, wrk on core 0")
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} missing: run bash bench/peers.sh")
    if not (PEERS_BIN / "mlflow").exists():
        raise SystemExit("peers' venv missing: run bash bench/peers.sh")

    work = Path(tempfile.mkdtemp(prefix="shipyard-serving-bench-"))
    servers: dict[str, Server] = {}
    try:
        print("building the model (fit, MLflow save, Shipyard register with ONNX) ...", flush=True)
        mlflow_dir, rows, facts, baseline = build_models(work)
        print(f"  register (incl. ONNX export + parity check): {facts['register_s']:.1f} s")
        print(f"  ONNX: {facts['onnx']}")
        records = [json_row(rows, i) for i in range(len(rows))]
        cols = list(records[0])
        lua_mlflow = write_lua(
            work / "mlflow.lua",
            [
                json.dumps({"dataframe_split": {"columns": cols, "data": [[r[c] for c in cols]]}})
                for r in records
            ],
        )
        lua_shipyard = write_lua(
            work / "shipyard.lua", [json.dumps({"records": [r]}) for r in records]
        )

        sy_env = dict(os.environ, SHIPYARD_HOME=str(work / "home"), SHIPYARD_USER="admin")
        shipyard = str(SHIPYARD_BIN / "shipyard")
        for name in systems:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            if name == "mlflow":
                servers[name] = Server(
                    name,
                    [
                        str(PEERS_BIN / "mlflow"),
                        "models",
                        "serve",
                        "-m",
                        str(mlflow_dir),
                        "--env-manager",
                        "local",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port),
                    ],
                    peers_env(),
                    f"{base}/ping",
                    f"{base}/invocations",
                    work / f"{name}.log",
                )
            else:
                # shipyard-onnx | shipyard-native; suffixes (diagnostics): "-nolog" adds --no-log,
                # "-thread" compacts the log in a thread of the server (--compactor thread)
                runtime = name.split("-")[1]
                log_opts = (
                    ["--no-log"]
                    if name.endswith("-nolog")
                    else ["--log-dir", str(work / f"log-{name}")]
                )
                if name.endswith("-thread"):
                    log_opts += ["--compactor", "thread"]
                servers[name] = Server(
                    name,
                    [
                        shipyard,
                        "serve",
                        "--runtime",
                        runtime,
                        "--no-auth",
                        "--port",
                        str(port),
                        "--models",
                        MODEL,
                        *log_opts,
                    ],
                    sy_env,
                    f"{base}/v2/health/ready",
                    f"{base}/models/{MODEL}/predict",
                    work / f"{name}.log",
                )
        for s in servers.values():
            print(f"starting {s.name} (pinned to core {SERVER_CORE}) ...", flush=True)
            t0 = time.perf_counter()
            s.start()
            print(f"  ready in {time.perf_counter() - t0:.1f} s")
            s.signal(signal.SIGSTOP)
        lua = {n: (lua_mlflow if n == "mlflow" else lua_shipyard) for n in servers}

        # sanity: same answer from every server for the first body
        answers = {}
        for n, s in servers.items():
            s.signal(signal.SIGCONT)
            body = lua[n].read_text().split("[==[")[1].split("]==]")[0].encode()
            req = urllib.request.Request(s.url, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                answers[n] = json.loads(r.read())
            # warm-up (and an early check for errors)
            run_wrk(s.url, lua[n], 8, 2)
            s.signal(signal.SIGSTOP)
        print(
            "first answer:",
            {n: (a.get("predictions"), a.get("probabilities")) for n, a in answers.items()},
        )

        runs: list[dict[str, Any]] = []
        inproc_rounds: list[dict[str, float]] = []
        for rep in range(args.repeats):
            inproc_rounds.append(baseline(200))  # every server is frozen here
            print(
                f"  round {rep + 1}/{args.repeats} in-process one row: "
                + ", ".join(f"{k} {v:.0f} us" for k, v in inproc_rounds[-1].items()),
                flush=True,
            )
            for conc in concs:
                for n, s in servers.items():
                    s.signal(signal.SIGCONT)
                    time.sleep(0.5)
                    r = run_wrk(s.url, lua[n], conc, args.duration)
                    s.signal(signal.SIGSTOP)
                    r.update(system=n, concurrency=conc, repeat=rep)
                    runs.append(r)
                    print(
                        f"  round {rep + 1}/{args.repeats} c={conc:<3} {n:16} "
                        f"{r['rps']:9.1f} req/s  p50 {r['p50_ms']:8.2f} ms  "
                        f"p99 {r['p99_ms']:8.2f} ms",
                        flush=True,
                    )
        # servers' own logs: any error lines?
        for s in servers.values():
            s.signal(signal.SIGCONT)
    finally:
        for s in servers.values():
            s.stop()
        if not (locals().get("args") and args.keep):
            shutil.rmtree(work, ignore_errors=True)

    summary = summarize(runs, list(servers), concs, inproc_rounds)
    inprocess = {k: statistics.median(r[k] for r in inproc_rounds) for k in inproc_rounds[0]}
    print_table(summary, inprocess)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"serving-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "machine": {
                    "cpus": os.cpu_count(),
                    "server_core": SERVER_CORE,
                    "wrk_core": WRK_CORE,
                },
                "model": facts,
                "inprocess_us": inprocess,
                "inprocess_us_rounds": inproc_rounds,
                "runs": runs,
                "summary": summary,
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nwrote {out.relative_to(ROOT)}")


def _baseline_ms(system: str, inproc: dict[str, float]) -> float:
    key = "onnx_feed_and_run_us" if "onnx" in system else "native_predict_proba_validated_us"
    return inproc[key] / 1000


def summarize(
    runs: list[dict[str, Any]],
    systems: list[str],
    concs: list[int],
    inproc_rounds: list[dict[str, float]],
) -> list[dict]:
    by = {(r["system"], r["concurrency"], r["repeat"]): r for r in runs}
    reps = sorted({r["repeat"] for r in runs})
    out = []
    for n in systems:
        for c in concs:
            mine = [by[(n, c, k)] for k in reps]
            row = {
                "system": n,
                "concurrency": c,
                "rps": statistics.median(r["rps"] for r in mine),
                "p50_ms": statistics.median(r["p50_ms"] for r in mine),
                "p99_ms": statistics.median(r["p99_ms"] for r in mine),
            }
            if c == 1 and n.startswith("shipyard"):
                row["overhead_ms"] = statistics.median(
                    r["p50_ms"] - _baseline_ms(n, inproc_rounds[k])
                    for r, k in zip(mine, reps, strict=True)
                )
            if "mlflow" in systems and n != "mlflow":
                ml = [by[("mlflow", c, k)] for k in reps]
                row["rps_ratio"] = statistics.median(
                    a["rps"] / b["rps"] for a, b in zip(mine, ml, strict=True)
                )
                row["p99_ratio"] = statistics.median(
                    a["p99_ms"] / b["p99_ms"] for a, b in zip(mine, ml, strict=True)
                )
                row["rps_ratio_range"] = [
                    min(a["rps"] / b["rps"] for a, b in zip(mine, ml, strict=True)),
                    max(a["rps"] / b["rps"] for a, b in zip(mine, ml, strict=True)),
                ]
            out.append(row)
    return out


def print_table(summary: list[dict], inproc: dict[str, float]) -> None:
    print(
        f"\n{'system':16} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'x MLflow req/s':>15} {'p99 / MLflow':>13}"
    )
    for r in summary:
        ratio = f"{r['rps_ratio']:.1f}x" if "rps_ratio" in r else "-"
        p99r = f"{r['p99_ratio']:.3f}" if "p99_ratio" in r else "-"
        print(
            f"{r['system']:16} {r['concurrency']:>4} {r['rps']:9.1f} {r['p50_ms']:8.2f} "
            f"{r['p99_ms']:8.2f} {ratio:>15} {p99r:>13}"
        )
    print("\nin-process, one row (median over rounds of each round's median, us):")
    for k, v in inproc.items():
        print(f"  {k:40} {v:9.1f}")
    for r in summary:
        if "overhead_ms" in r:
            print(
                f"  {r['system']} c=1: p50 {r['p50_ms']:.2f} ms, in-process "
                f"{_baseline_ms(r['system'], inproc):.2f} ms; server overhead (median of "
                f"per-round differences) {r['overhead_ms']:.2f} ms"
            )


if __name__ == "__main__":
    main()
