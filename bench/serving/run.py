"""Serving throughput and latency: Shipyard (ONNX and native) against MLflow and MLServer.

    .venv/bin/python bench/serving/run.py [--model loan|synthetic] [--duration 10]
        [--repeats 3] [--concurrency 8,32] [--systems ...]

Needs the peers' venvs, wrk and h2load (``bash bench/peers.sh serving``) and at least 2 CPU
cores.

1. Builds one pipeline on generated data (fixed seed). ``--model loan`` (the default): a loan
   book as real data gives it, 12 float columns, ``annual_income`` missing in ~1% of rows, two
   integer columns, a 50-level ``state`` and five other text categoricals (StandardScaler +
   OneHotEncoder(handle_unknown="ignore") -> HistGradientBoostingClassifier(max_iter=100),
   which handles the missing values itself). ``--model synthetic``: the earlier 14 numeric +
   6 categorical columns without missing values. Saves it for MLflow
   (``mlflow.sklearn.save_model(..., serialization_format="cloudpickle",
   pyfunc_predict_fn="predict_proba")``: every system computes the probabilities) and for MLServer
   (joblib, ``mlserver_sklearn.SKLearnModel``), both run with the peers' pythons on the same
   fitted pipeline, and registers, approves and promotes it in a temporary Shipyard home (with
   its ONNX export).
2. Starts the servers, each pinned to core 1 (``taskset -c 1``): MLflow, MLServer 1.7.1
   (``parallel_workers: 0``: inference in the one server process, as one uvicorn worker),
   ``shipyard serve --runtime onnx`` and ``--runtime native``, both with the prediction log
   ON and ``--no-auth`` (and ``--grpc-port`` when a ``:grpc`` target of that server is asked
   for: one process answers both).
3. Drives each HTTP target with ``taskset -c 0 wrk -t1 -cC -dDs --latency`` and a Lua script
   cycling single-row bodies of the same 64 unseen rows (nulls where the row misses a value).
   A target is a server and a protocol: ``shipyard-onnx`` (records on
   ``/models/bench/predict``), ``shipyard-onnx:v2`` (Open Inference Protocol JSON on
   ``/v2/models/bench/infer``), ``:v2-binary`` (the binary tensor extension, as
   tritonclient.http sends it; skipped when the server does not answer it) and ``:grpc``
   (OIP v2 gRPC ``ModelInfer``; ``mlserver:grpc`` for MLServer's). gRPC targets are driven by
   ``taskset -c 0 h2load -t1 -cC -m1 -D d`` (nghttp2-client) posting one gRPC-framed
   ``ModelInferRequest`` (the first row) over h2c with ``content-type: application/grpc`` and
   ``te: trailers``; before measuring, the same bytes go once through grpcio (its answer's
   probabilities are compared with every other target's) and once through ``nghttp``
   (``grpc-status: 0``), and after every gRPC run on a Shipyard server its ``/metrics`` must
   count as many OK gRPC calls as h2load made and no refused one (h2load itself sees only the
   HTTP status, and a failed gRPC call is an HTTP 200). ``TARGET+h2load`` drives an HTTP
   target with h2load (HTTP/1.1, one body) to compare the two generators within a round.
   Order A B C ... per concurrency, repeated ``--repeats`` times; the servers not being
   measured are frozen (SIGSTOP) so their background threads cannot take the server core.
   Any non-2xx answer or socket error stops the benchmark.
4. Prints median req/s, p50, p99 per target and concurrency, the ratios against MLflow,
   MLServer and MLServer's gRPC (taken within each round, then the median) and the server's
   CPU time per request (user + system of its processes, from ``/proc/PID/stat`` before and
   after each run, over the requests the generator made), and writes everything to
   bench/results/serving-<timestamp>.json. With ``--baseline-src DIR`` the servers
   ``shipyard-onnx-base`` / ``shipyard-native-base`` run DIR's code (``PYTHONPATH``; e.g. a
   ``git worktree`` of main): each Shipyard target with a ``-base`` twin in the same run gets
   its CPU and req/s ratio to it, taken within rounds. ``grpc-floor:grpc`` is a bare grpc.aio
   server answering a fixed ``ModelInferResponse`` (``grpc_floor.py``): grpcio's own ceiling
   under the same h2load harness.
5. The c=1 server overhead: at the start of every round, with every server frozen, this
   process times one-row predictions in process, pinned to the servers' core (ONNX: feed +
   run; native: ``LoadedModel.predict_proba`` with its schema check). The overhead is each
   round's c=1 p50 minus that round's in-process median, then the median over rounds.
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
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
PEERS_BIN = ROOT / "bench" / ".peers" / "venv" / "bin"
MLSERVER_BIN = ROOT / "bench" / ".peers" / "mlserver-venv" / "bin"
SHIPYARD_BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
MODEL = "bench"
SEED = 7
N_BODIES = 64
SERVER_CORE, WRK_CORE = "1", "0"
PEERS = ("mlflow", "mlserver")

MLFLOW_SAVE = r"""
import sys, time, joblib, numpy as np, pandas as pd, mlflow.sklearn
model = joblib.load(sys.argv[1])
X = pd.read_pickle(sys.argv[3])
mlflow.sklearn.save_model(model, sys.argv[2], serialization_format="cloudpickle",
                          input_example=X.head(2), pyfunc_predict_fn="predict_proba")
"""


# -- models ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """One benchmark model: its columns by kind and how to generate its data."""

    name: str
    floats: list[str]
    ints: list[str]
    texts: list[str]
    make_data: Callable[[int], tuple[pd.DataFrame, pd.Series]]

    @property
    def numeric(self) -> list[str]:
        return self.floats + self.ints


SYN_NUMERIC = [f"num_{i}" for i in range(14)]
SYN_CATEGORICAL = [f"cat_{i}" for i in range(6)]


def synthetic_data(n: int = 20_000) -> tuple[pd.DataFrame, pd.Series]:
    """The earlier model's data: 14 numeric, 6 categorical columns, no missing values."""
    rng = np.random.default_rng(SEED)
    num = rng.normal(size=(n, len(SYN_NUMERIC))) * rng.uniform(
        0.5, 20, len(SYN_NUMERIC)
    ) + rng.uniform(-50, 50, len(SYN_NUMERIC))
    X = pd.DataFrame(num, columns=SYN_NUMERIC)
    levels = [[f"{c}_v{k}" for k in range(3 + i)] for i, c in enumerate(SYN_CATEGORICAL)]
    for c, lv in zip(SYN_CATEGORICAL, levels, strict=True):
        X[c] = pd.Series(rng.choice(lv, size=n), dtype=object)
    z = (
        (num[:, 0] - num[:, 0].mean()) / num[:, 0].std()
        - 0.7 * ((num[:, 3] - num[:, 3].mean()) / num[:, 3].std())
        + 0.5 * np.sin(num[:, 5])
    )
    z += np.where(X["cat_0"] == "cat_0_v1", 0.8, 0.0) - np.where(X["cat_2"] == "cat_2_v0", 0.6, 0)
    y = pd.Series((z + rng.normal(scale=0.8, size=n) > 0).astype(int), name="churned")
    return X, y


US_STATES = (  # noqa: SIM905 (a word list reads better than 50 quoted items)
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
    "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY"
).split()
LOAN_FLOATS = [
    "loan_amount",
    "annual_income",  # missing in ~1% of rows, as income often is
    "debt_to_income",
    "interest_rate",
    "installment",
    "revolving_balance",
    "revolving_utilization",
    "credit_history_years",
    "employment_years",
    "inquiries_6m_rate",
    "total_credit_limit",
    "savings_ratio",
]
LOAN_INTS = ["age", "open_accounts"]
LOAN_TEXTS = ["state", "gender", "purpose", "home_ownership", "grade", "channel"]
LOAN_LEVELS = {
    "state": US_STATES,
    "gender": ["f", "m"],
    "purpose": ["car", "home", "education", "business", "debt_consolidation", "other"],
    "home_ownership": ["rent", "own", "mortgage"],
    "grade": list("ABCDEFG"),
    "channel": ["web", "branch", "phone", "partner"],
}


def loan_data(n: int = 20_000) -> tuple[pd.DataFrame, pd.Series]:
    """A loan book: 12 floats (income missing in ~1% of rows), 2 integers, 6 text columns
    (a 50-level US state among them), and whether the loan defaulted."""
    rng = np.random.default_rng(SEED)
    scales = rng.uniform(0.5, 20, len(LOAN_FLOATS))
    num = rng.normal(size=(n, len(LOAN_FLOATS))) * scales + rng.uniform(0, 100, len(scales))
    X = pd.DataFrame(np.round(num, 2), columns=LOAN_FLOATS)
    X["loan_amount"] = np.round(rng.lognormal(9.3, 0.6, n), -2)
    X["annual_income"] = np.round(rng.lognormal(11.0, 0.5, n), -2)
    X.loc[rng.random(n) < 0.01, "annual_income"] = np.nan
    X["age"] = rng.integers(19, 80, n)
    X["open_accounts"] = rng.poisson(8, n)
    state_weights = rng.dirichlet(np.ones(len(US_STATES)) * 2)
    for c in LOAN_TEXTS:
        levels = LOAN_LEVELS[c]
        weights = state_weights if c == "state" else None
        X[c] = pd.Series(rng.choice(levels, size=n, p=weights), dtype=object)
    income = np.nan_to_num(X["annual_income"].to_numpy(), nan=60_000.0)
    z = (
        X["loan_amount"].to_numpy() / income * 3
        - 0.5
        + X["grade"].map(dict(zip("ABCDEFG", np.linspace(-1, 1.2, 7), strict=True))).to_numpy()
        + np.where(X["state"].isin(["NV", "FL", "MS"]), 0.5, 0.0)
        + 0.3 * np.sin(num[:, 2])
        - 0.01 * (X["age"].to_numpy() - 45)
        + np.where(X["annual_income"].isna(), 0.6, 0.0)
    )
    y = pd.Series((z + rng.normal(scale=0.8, size=n) > 0).astype(int), name="defaulted")
    return X, y


SPECS = {
    "loan": Spec("loan", LOAN_FLOATS, LOAN_INTS, LOAN_TEXTS, loan_data),
    "synthetic": Spec("synthetic", SYN_NUMERIC, [], SYN_CATEGORICAL, synthetic_data),
}


def make_pipeline(spec: Spec) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    # No SimpleImputer: HistGradientBoosting handles missing values itself, and onnxruntime
    # has no double-precision Imputer kernel (the export would fall back to float inputs).
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), spec.numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), spec.texts),
        ]
    )
    return Pipeline(
        [("pre", pre), ("clf", HistGradientBoostingClassifier(max_iter=100, random_state=SEED))]
    )


MLSERVER_SETTINGS = {"parallel_workers": 0, "debug": False, "metrics_endpoint": None}


def build_models(
    spec: Spec, work: Path, mlflow: bool = True
) -> tuple[Path, Path, pd.DataFrame, dict[str, Any], Any]:
    """Fit once; save for MLflow (with ``mlflow``: its python) and MLServer and register in
    Shipyard.
    Returns the MLflow model folder, the MLServer folder, request rows, facts about the
    Shipyard archive, and a function timing the in-process baseline (``baseline(n)``)."""
    import joblib

    from shipyard import Client, Settings
    from shipyard.config import ProjectConfig
    from shipyard.store import Store

    X, y = spec.make_data(20_000)
    model = make_pipeline(spec).fit(X, y)
    joblib.dump(model, work / "model.joblib")
    X.head(50).to_pickle(work / "X_head.pkl")
    mlflow_dir = work / "mlflow-model"
    script = work / "save_mlflow.py"
    script.write_text(MLFLOW_SAVE)
    if mlflow:  # the peers' venv is needed only when MLflow is measured
        subprocess.run(
            [
                str(PEERS_BIN / "python"),
                str(script),
                str(work / "model.joblib"),
                str(mlflow_dir),
                str(work / "X_head.pkl"),
            ],
            check=True,
            env=peers_env(PEERS_BIN),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    mlserver_dir = work / "mlserver"
    model_dir = mlserver_dir / "models" / MODEL
    model_dir.mkdir(parents=True)
    shutil.copy(work / "model.joblib", model_dir / "model.joblib")
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": MODEL,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib"},
            }
        )
    )

    home = work / "home"
    # The validation gates are not what this measures: promote without a gate record.
    project = ProjectConfig.model_validate({"gates": {"require": False}})
    store = Store.from_settings(Settings(home=home, user="admin")).open()
    admin = Client(Settings(home=home, user="admin"), store=store, project=project).open()
    admin.users.set_role("bob", "approver", actor="admin")
    alice = Client(Settings(home=home, user="alice"), store=store, project=project).open()
    bob = Client(Settings(home=home, user="bob"), store=store, project=project).open()
    t0 = time.perf_counter()
    mv = alice.register(model, name=MODEL, X_train=X, y_train=y, onnx=True)
    register_s = time.perf_counter() - t0
    bob.approve(MODEL, mv.version, reason="serving bench")
    alice.promote(MODEL, mv.version, reason="serving bench")
    loaded = alice.load(f"{MODEL}@production")
    facts = {
        "model": spec.name,
        "register_s": register_s,
        "schema": [
            {"name": c.name, "dtype": c.dtype, "nullable": c.nullable}
            for c in loaded.schema.columns
        ],
        "onnx": loaded.manifest.onnx
        and {k: v for k, v in loaded.manifest.onnx.items() if k != "inputs"},
    }
    store.close()  # the loaded model stays usable: it is in memory

    # requests: rows not seen in training, the first ones with a missing income
    Xr, _ = spec.make_data(20_000 + N_BODIES * 20)
    rows = Xr.tail(N_BODIES * 20).reset_index(drop=True)
    if "annual_income" in rows:
        gaps = rows.index[rows["annual_income"].isna()]
        rows = pd.concat([rows.loc[gaps[:2]], rows.drop(index=gaps)]).head(N_BODIES)
    rows = rows.head(N_BODIES).reset_index(drop=True)

    def baseline(n: int) -> dict[str, float]:
        return inprocess_baseline(loaded, rows, n)

    return mlflow_dir, mlserver_dir, rows, facts, baseline


def inprocess_baseline(loaded: Any, X: pd.DataFrame, n: int = 500) -> dict[str, float]:
    """Median microseconds of one-row predictions in this process (no HTTP)."""

    from threadpoolctl import threadpool_limits

    frames = [X.iloc[[i]].reset_index(drop=True) for i in range(min(50, len(X)))]
    records = [json_row(X, i) for i in range(min(50, len(X)))]
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(SERVER_CORE)})  # the servers' core, as they are
    try:
        # One OpenMP thread, as in the servers (taskset before start: OpenMP sees one core);
        # this process started on every core, and two threads on one core spin-wait.
        with threadpool_limits(1):
            return _inprocess(loaded, frames, records, n)
    finally:
        os.sched_setaffinity(0, previous)


def _inprocess(
    loaded: Any, rows: list[pd.DataFrame], records: list[dict[str, Any]], n: int
) -> dict[str, float]:
    from shipyard.packaging import OnnxInput, OnnxPredictor
    from shipyard.serving._inputs import rows_from_records
    from shipyard.serving._runtime import ServedModel
    from shipyard.settings import ServeSettings

    out: dict[str, float] = {}

    def med(fn: Any, items: list[Any]) -> float:
        for r in items[:10]:
            fn(r)
        ts = []
        for i in range(n):
            r = items[i % len(items)]
            t = time.perf_counter_ns()
            fn(r)
            ts.append(time.perf_counter_ns() - t)
        return statistics.median(ts) / 1000

    out["native_predict_proba_validated_us"] = med(lambda r: loaded.predict_proba(r), rows)
    out["native_predict_proba_us"] = med(lambda r: loaded.predict_proba(r, validate=False), rows)
    out["sklearn_pipeline_predict_proba_us"] = med(lambda r: loaded.model.predict_proba(r), rows)
    summary = loaded.manifest.onnx or {}
    if "model.onnx" in loaded.archive.members and summary.get("inputs"):
        inputs = [OnnxInput(**item) for item in summary["inputs"]]
        pred = OnnxPredictor(loaded.archive.members["model.onnx"], inputs).load()
        out["onnx_feed_and_run_us"] = med(lambda r: pred.predict_arrays(pred.make_feed(r)), rows)
        out["onnx_coerce_feed_and_run_us"] = med(
            lambda r: pred.predict_arrays(pred.make_feed(loaded.schema.coerce(r))), rows
        )
        served = ServedModel.build(loaded, ServeSettings(runtime="onnx"))
        # What the server does with a JSON record: Rows -> typed columns -> feed -> run.
        out["onnx_typed_rows_score_us"] = med(
            lambda r: served.score_now(served.coerce(rows_from_records([r]))), records
        )
    return out


# -- servers -----------------------------------------------------------------------------
def peers_env(bin_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '')}"
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(
        self,
        name: str,
        cmd: list[str],
        env: dict[str, str],
        ready: str,
        base: str,
        logfile: Path,
        grpc: str | None = None,
    ) -> None:
        self.name, self.cmd, self.env, self.ready, self.base = name, cmd, env, ready, base
        self.logfile = logfile
        self.grpc = grpc  # host:port of its gRPC endpoint, if it has one
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> None:
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
            if self._is_ready():
                return
            time.sleep(0.3)
        raise SystemExit(
            f"{self.name} not ready after {timeout}s:\n{self.logfile.read_text()[-3000:]}"
        )

    def _is_ready(self) -> bool:
        """The ready URL answers 200 (``grpc:HOST:PORT``: a gRPC channel to it connects)."""
        if self.ready.startswith("grpc:"):
            import grpc

            with grpc.insecure_channel(self.ready.removeprefix("grpc:")) as channel:
                try:
                    grpc.channel_ready_future(channel).result(timeout=2)
                except grpc.FutureTimeoutError:
                    return False
            return True
        try:
            with urllib.request.urlopen(self.ready, timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server's processes: every process of
        its session (a compactor child, MLflow's gunicorn workers) and the children they
        have reaped. Processes that ended unreaped within a run are missed."""
        assert self.proc is not None
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # ended meanwhile
            # after the command's ")": state ppid pgrp session ... utime(11) stime(12)
            # cutime(13) cstime(14), counted from 0
            if int(fields[3]) == self.proc.pid:
                ticks += sum(int(f) for f in fields[11:15])
        return ticks / os.sysconf("SC_CLK_TCK")

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


def make_server(
    name: str,
    work: Path,
    mlflow_dir: Path,
    mlserver_dir: Path,
    baseline_src: Path | None,
    grpc: bool = False,
) -> Server:
    """The server ``name``; ``grpc``: also listening for gRPC (Shipyard's ``--grpc-port``;
    MLServer always opens its gRPC port)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = work / f"{name}.log"
    if name == "grpc-floor":
        cmd = [sys.executable, str(Path(__file__).with_name("grpc_floor.py")), str(port)]
        address = f"127.0.0.1:{port}"
        return Server(name, cmd, dict(os.environ), f"grpc:{address}", base, log, address)
    if name == "mlflow":
        cmd = [str(PEERS_BIN / "mlflow"), "models", "serve", "-m", str(mlflow_dir)]
        cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
        return Server(name, cmd, peers_env(PEERS_BIN), f"{base}/ping", base, log)
    if name == "mlserver":
        settings = {
            **MLSERVER_SETTINGS,
            "host": "127.0.0.1",
            "http_port": port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
        }
        (mlserver_dir / "settings.json").write_text(json.dumps(settings))
        cmd = [str(MLSERVER_BIN / "mlserver"), "start", str(mlserver_dir)]
        ready = f"{base}/v2/models/{MODEL}/ready"
        grpc_at = f"127.0.0.1:{settings['grpc_port']}"
        return Server(name, cmd, peers_env(MLSERVER_BIN), ready, base, log, grpc_at)
    # shipyard-onnx | shipyard-native; suffixes (diagnostics): "-nolog" adds --no-log,
    # "-thread" compacts the log in a thread of the server (--compactor thread), "-base"
    # runs the code of --baseline-src (an A/B of two checkouts within the same rounds)
    runtime = name.split("-")[1]
    opts = ["--no-log"] if "-nolog" in name else ["--log-dir", str(work / f"log-{name}")]
    if "-thread" in name:
        opts += ["--compactor", "thread"]
    grpc_addr: str | None = None
    # only when a :grpc target asks (or "-grpcport", a diagnostic: the gRPC server idle beside
    # HTTP, to see what it costs the HTTP figures)
    if grpc or "-grpcport" in name:
        grpc_port = free_port()
        opts += ["--grpc-port", str(grpc_port)]
        grpc_addr = f"127.0.0.1:{grpc_port}"
    cmd = [str(SHIPYARD_BIN / "shipyard"), "serve", "--runtime", runtime, "--no-auth"]
    cmd += ["--port", str(port), "--models", MODEL, *opts]
    env = dict(os.environ, SHIPYARD_HOME=str(work / "home"), SHIPYARD_USER="admin")
    if "-base" in name:
        if baseline_src is None:
            raise SystemExit(f"{name} needs --baseline-src (the src folder of another checkout)")
        env["PYTHONPATH"] = str(baseline_src)
    return Server(name, cmd, env, f"{base}/v2/health/ready", base, log, grpc_addr)


# -- request bodies ------------------------------------------------------------------------
@dataclass(frozen=True)
class Body:
    """One request as wrk sends it."""

    data: bytes
    headers: dict[str, str]


JSON_HEADERS = {"Content-Type": "application/json"}
_V2_TYPES = {"float": "FP64", "int": "INT64", "text": "BYTES"}


def json_row(rows: pd.DataFrame, i: int) -> dict[str, Any]:
    """Row ``i`` as JSON values: floats, ints, text, None where missing."""
    out: dict[str, Any] = {}
    for k, v in rows.iloc[i].to_dict().items():
        if isinstance(v, float | np.floating):
            out[str(k)] = None if np.isnan(v) else float(v)
        elif isinstance(v, int | np.integer):
            out[str(k)] = int(v)
        else:
            out[str(k)] = str(v)
    return out


def kinds_of(rows: pd.DataFrame) -> dict[str, str]:
    return {
        c: "float" if rows[c].dtype.kind == "f" else "int" if rows[c].dtype.kind in "iu" else "text"
        for c in rows.columns
    }


def _json(value: Any) -> Body:
    return Body(json.dumps(value).encode(), JSON_HEADERS)


def body_mlflow(record: dict[str, Any], kinds: dict[str, str]) -> Body:
    cols = list(record)
    return _json({"dataframe_split": {"columns": cols, "data": [[record[c] for c in cols]]}})


def body_mlserver(record: dict[str, Any], kinds: dict[str, str]) -> Body:
    # One input per column, decoded into a DataFrame (content type "pd"); text inputs as str,
    # else MLServer hands the pipeline bytes (unseen categories to the one-hot encoder).
    inputs = []
    for c, v in record.items():
        tensor: dict[str, Any] = {"name": c, "datatype": _V2_TYPES[kinds[c]], "shape": [1]}
        tensor["data"] = [v]
        if kinds[c] == "text":
            tensor["parameters"] = {"content_type": "str"}
        inputs.append(tensor)
    return _json(
        {
            "inputs": inputs,
            "parameters": {"content_type": "pd"},
            "outputs": [{"name": "predict_proba"}],
        }
    )


def body_records(record: dict[str, Any], kinds: dict[str, str]) -> Body:
    return _json({"records": [record]})


def body_v2(record: dict[str, Any], kinds: dict[str, str]) -> Body:
    inputs = [
        {"name": c, "datatype": _V2_TYPES[kinds[c]], "shape": [1, 1], "data": [v]}
        for c, v in record.items()
    ]
    return _json({"inputs": inputs})


def body_v2_binary(record: dict[str, Any], kinds: dict[str, str]) -> Body:
    """The binary tensor data extension, as tritonclient.http sends a request by default:
    a JSON header, then each input's raw bytes; the answer's probabilities in binary too."""
    inputs, raw = [], b""
    for c, v in record.items():
        if kinds[c] == "float":
            data = struct.pack("<d", float("nan") if v is None else v)
        elif kinds[c] == "int":
            data = struct.pack("<q", v)
        else:
            text = v.encode()
            data = struct.pack("<I", len(text)) + text
        inputs.append(
            {
                "name": c,
                "datatype": _V2_TYPES[kinds[c]],
                "shape": [1, 1],
                "parameters": {"binary_data_size": len(data)},
            }
        )
        raw += data
    header = json.dumps(
        {
            "inputs": inputs,
            "outputs": [{"name": "predict_proba", "parameters": {"binary_data": True}}],
        }
    ).encode()
    headers = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header)),
    }
    return Body(header + raw, headers)


#: The Open Inference Protocol's gRPC method (KServe's grpc_predict_v2.proto; MLServer's
#: dataplane.proto has the same package, service, messages and field numbers).
GRPC_PATH = "/inference.GRPCInferenceService/ModelInfer"
GRPC_HEADERS = {"content-type": "application/grpc", "te": "trailers"}


def _pb() -> Any:
    from shipyard.serving._proto import grpc_predict_v2_pb2

    return grpc_predict_v2_pb2


def grpc_frame(message: bytes) -> bytes:
    """gRPC's length-prefixed message: 1 byte "not compressed", 4 bytes big-endian length."""
    return b"\x00" + struct.pack(">I", len(message)) + message


def grpc_unframe(data: bytes) -> bytes:
    if len(data) < 5 or data[0] != 0 or struct.unpack(">I", data[1:5])[0] != len(data) - 5:
        raise ValueError(f"not one uncompressed gRPC message: {data[:40]!r}")
    return data[5:]


def body_grpc(record: dict[str, Any], kinds: dict[str, str]) -> Body:
    """A ``ModelInferRequest`` as ``tritonclient.grpc`` sends one by default: every input's
    bytes in ``raw_input_contents`` (laid out as the HTTP binary extension lays them out),
    shape ``[1, 1]``, ``predict_proba`` asked for; gRPC-framed, as h2load posts it."""
    pb = _pb()
    msg = pb.ModelInferRequest(model_name=MODEL)
    for c, v in record.items():
        msg.inputs.add(name=c, datatype=_V2_TYPES[kinds[c]], shape=[1, 1])
        if kinds[c] == "float":
            msg.raw_input_contents.append(struct.pack("<d", float("nan") if v is None else v))
        elif kinds[c] == "int":
            msg.raw_input_contents.append(struct.pack("<q", v))
        else:
            text = v.encode()
            msg.raw_input_contents.append(struct.pack("<I", len(text)) + text)
    msg.outputs.add(name="predict_proba")
    return Body(grpc_frame(msg.SerializeToString()), GRPC_HEADERS)


def body_mlserver_grpc(record: dict[str, Any], kinds: dict[str, str]) -> Body:
    """MLServer's gRPC form of ``body_mlserver``: one input per column, shape ``[1]``, values
    in the typed ``contents`` (as MLServer's own codecs write them), text inputs with content
    type ``str`` and the request's ``pd``; a missing float is NaN."""
    pb = _pb()
    msg = pb.ModelInferRequest(model_name=MODEL)
    msg.parameters["content_type"].string_param = "pd"
    for c, v in record.items():
        tensor = msg.inputs.add(name=c, datatype=_V2_TYPES[kinds[c]], shape=[1])
        if kinds[c] == "float":
            tensor.contents.fp64_contents.append(float("nan") if v is None else v)
        elif kinds[c] == "int":
            tensor.contents.int64_contents.append(v)
        else:
            tensor.contents.bytes_contents.append(v.encode())
            tensor.parameters["content_type"].string_param = "str"
    msg.outputs.add(name="predict_proba")
    return Body(grpc_frame(msg.SerializeToString()), GRPC_HEADERS)


@dataclass(frozen=True)
class Protocol:
    """How a target is asked: its URL path, its bodies, the probabilities in an answer, and
    its transport (``http``: wrk over HTTP/1.1; ``grpc``: h2load over h2c)."""

    path: str
    body: Callable[[dict[str, Any], dict[str, str]], Body]
    proba: Callable[[bytes], list[float]]
    transport: str = "http"


def _proba_shipyard(answer: bytes) -> list[float]:
    return [float(p) for p in json.loads(answer)["probabilities"][0]]


def _proba_v2(answer: bytes) -> list[float]:
    outputs = {o["name"]: o for o in json.loads(answer)["outputs"]}
    return [float(p) for p in outputs["predict_proba"]["data"]]


def _proba_v2_binary(answer: bytes) -> list[float]:
    """The answer is a JSON header (Inference-Header-Content-Length bytes) then each binary
    output's raw bytes in order; the header is ASCII JSON, so decoding as latin-1 (one
    character per byte) finds where it ends."""
    header, end = json.JSONDecoder().raw_decode(answer.decode("latin-1"))
    offset = end
    for out in header["outputs"]:
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is None:
            if out["name"] == "predict_proba":
                return [float(p) for p in out["data"]]
            continue
        if out["name"] == "predict_proba":
            dtype = {"FP64": "<f8", "FP32": "<f4"}[out["datatype"]]
            return np.frombuffer(answer[offset : offset + size], dtype=dtype).tolist()
        offset += size
    raise ValueError(f"no predict_proba in {header}")


def _proba_mlflow(answer: bytes) -> list[float]:
    return [float(p) for p in json.loads(answer)["predictions"][0]]


def _proba_grpc(answer: bytes) -> list[float]:
    """``predict_proba`` of a ``ModelInferResponse`` (its message bytes, unframed), from
    ``raw_output_contents`` (Shipyard, Triton) or the typed ``contents`` (MLServer)."""
    msg = _pb().ModelInferResponse.FromString(answer)
    for i, out in enumerate(msg.outputs):
        if out.name != "predict_proba":
            continue
        if msg.raw_output_contents:
            dtype = {"FP64": "<f8", "FP32": "<f4"}[out.datatype]
            return np.frombuffer(msg.raw_output_contents[i], dtype=dtype).tolist()
        return list(out.contents.fp64_contents or out.contents.fp32_contents)
    raise ValueError(f"no predict_proba in {msg}")


#: target protocol -> how it is asked. A peer's protocol is its name (``mlserver:grpc`` is
#: protocol ``mlserver-grpc``).
PROTOCOLS: dict[str, Protocol] = {
    "mlflow": Protocol("/invocations", body_mlflow, _proba_mlflow),
    "mlserver": Protocol(f"/v2/models/{MODEL}/infer", body_mlserver, _proba_v2),
    "mlserver-grpc": Protocol(GRPC_PATH, body_mlserver_grpc, _proba_grpc, "grpc"),
    "records": Protocol(f"/models/{MODEL}/predict", body_records, _proba_shipyard),
    "v2": Protocol(f"/v2/models/{MODEL}/infer", body_v2, _proba_v2),
    "v2-binary": Protocol(f"/v2/models/{MODEL}/infer", body_v2_binary, _proba_v2_binary),
    "grpc": Protocol(GRPC_PATH, body_grpc, _proba_grpc, "grpc"),
}


def target_parts(target: str) -> tuple[str, str]:
    """``shipyard-onnx:v2`` -> (server, protocol); a peer is its own protocol
    (``mlserver:grpc`` -> (mlserver, mlserver-grpc)). A ``+h2load`` suffix (an HTTP target
    driven by h2load instead of wrk, see ``generator``) does not change either."""
    server, _, protocol = target.removesuffix("+h2load").partition(":")
    if server in PEERS:
        return server, f"{server}-{protocol}" if protocol else server
    return server, protocol or "records"


def generator(target: str) -> str:
    """The load generator of ``target``: ``h2load`` for gRPC and for ``TARGET+h2load`` (an
    HTTP target driven by h2load over HTTP/1.1 with one body, to compare the generators),
    else ``wrk``."""
    if target.endswith("+h2load") or PROTOCOLS[target_parts(target)[1]].transport == "grpc":
        return "h2load"
    return "wrk"


LUA = """-- cycles single-row bodies (generated by bench/serving/run.py)
local bodies = {%s}
local headers = {%s}
local i = 0
wrk.method = "POST"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, headers[i], bodies[i])
end
"""


def lua_bytes(data: bytes) -> str:
    """A Lua string literal holding ``data`` exactly (long brackets would rewrite newlines)."""
    return '"' + "".join(f"\\{b}" for b in data) + '"'


def lua_table(headers: dict[str, str]) -> str:
    return "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()) + "}"


def write_lua(path: Path, bodies: list[Body]) -> Path:
    path.write_text(
        LUA
        % (
            ",\n".join(lua_bytes(b.data) for b in bodies),
            ",\n".join(lua_table(b.headers) for b in bodies),
        )
    )
    return path


def post(url: str, body: Body) -> tuple[int, bytes]:
    req = urllib.request.Request(url, body.data, body.headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# -- wrk ---------------------------------------------------------------------------------
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot read latency {text!r}")
    return float(m.group(1)) * _UNIT[m.group(2)]


def run_wrk(url: str, lua: Path, conc: int, duration: int) -> dict[str, Any]:
    cmd = ["taskset", "-c", WRK_CORE, "wrk", "-t1", f"-c{conc}", f"-d{duration}s"]
    cmd += ["--timeout", "10s", "-s", str(lua), "--latency", url]
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


# -- gRPC: one call, h2load ------------------------------------------------------------
def grpc_call(address: str, body: Body) -> tuple[str, bytes]:
    """The status name and answer (message bytes) of one unary call with ``body``'s exact
    message, through grpcio (no serializers: the bytes go as they are)."""
    import grpc

    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(GRPC_PATH)
        try:
            answer = call(grpc_unframe(body.data), timeout=60)
        except grpc.RpcError as exc:
            return exc.code().name, str(exc.details()).encode()
    return "OK", answer


def nghttp_status(address: str, body_file: Path) -> str:
    """``grpc-status`` of one h2c POST of ``body_file`` by nghttp (nghttp2-client, the same
    HTTP/2 stack as h2load): the framed body h2load sends is a valid call."""
    cmd = ["nghttp", "-v", "-n", "-d", str(body_file)]
    cmd += [arg for k, v in GRPC_HEADERS.items() for arg in ("-H", f"{k}: {v}")]
    out = subprocess.run(
        [*cmd, f"http://{address}{GRPC_PATH}"], capture_output=True, text=True, timeout=60
    ).stdout
    found = re.findall(r"recv \(stream_id=\d+\) grpc-status: (\d+)", out)
    return found[-1] if found else f"none in:\n{out[-1500:]}"


def grpc_counts(base: str) -> tuple[int, int]:
    """A Shipyard server's gRPC inferences from ``/metrics``: (answered OK, refused)."""
    with urllib.request.urlopen(base + "/metrics", timeout=30) as r:
        text = r.read().decode()
    ok = refused = 0
    for line in text.splitlines():
        if line.startswith("shipyard_requests_total{") and 'endpoint="grpc_infer"' in line:
            n = int(float(line.rsplit(" ", 1)[1]))
            if 'status="200"' in line:
                ok += n
            else:
                refused += n
    return ok, refused


def run_h2load(
    url: str, body_file: Path, headers: dict[str, str], conc: int, duration: int, h1: bool
) -> dict[str, Any]:
    """``h2load -t1 -cC -m1 -D d`` (one request in flight per connection, as wrk): gRPC over
    h2c, or HTTP/1.1 with ``h1``. Latencies from its per-request log; any non-2xx, failed,
    errored or timed-out request stops the benchmark (a gRPC error comes as HTTP 200 with a
    non-zero grpc-status: the caller checks those)."""
    log = body_file.with_suffix(f".c{conc}.log")
    cmd = ["taskset", "-c", WRK_CORE, "h2load", "-t1", f"-c{conc}", "-m1", "-D", str(duration)]
    cmd += ["-d", str(body_file), "--log-file", str(log), *(["--h1"] if h1 else [])]
    cmd += [arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    m = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        out,
    )
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not m or not codes:
        raise SystemExit(f"cannot read h2load's output against {url}:\n{out}")
    done, ok, failed, errored, timeout = (int(m.group(k)) for k in (3, 4, 5, 6, 7))
    if failed or errored or timeout or ok != int(codes.group(1)) or ok == 0:
        raise SystemExit(f"h2load saw errors against {url} (c={conc}):\n{out}")
    times = np.array(
        [int(line.split("\t")[2]) for line in log.read_text().splitlines() if line.strip()]
    )
    log.unlink()
    p50, p99 = np.percentile(times, [50, 99]) / 1000
    return {"rps": rps, "p50_ms": float(p50), "p99_ms": float(p99), "requests": done}


# -- main --------------------------------------------------------------------------------
DEFAULT_TARGETS = (
    "mlflow,mlserver,mlserver:grpc,shipyard-onnx,shipyard-onnx:v2,shipyard-onnx:v2-binary,"
    "shipyard-onnx:grpc,shipyard-native,shipyard-native:v2"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(SPECS), default="loan")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument(
        "--systems",
        default=DEFAULT_TARGETS,
        help="targets, SERVER[:PROTOCOL]: servers mlflow, mlserver, shipyard-onnx, "
        "shipyard-native (diagnostics: shipyard-onnx-nolog, shipyard-native-nolog, "
        "shipyard-onnx-thread, shipyard-native-thread, shipyard-onnx-grpcport, "
        "shipyard-onnx-base and shipyard-native-base: --baseline-src's code; grpc-floor: a "
        "bare grpc.aio server, grpc only); Shipyard protocols records (default), "
        "v2, v2-binary (skipped when the server does not answer it), grpc; mlserver:grpc; "
        "a +h2load suffix drives an HTTP target with h2load (one body) instead of wrk",
    )
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="src folder of another checkout (e.g. a git worktree of main), run by the "
        "servers named shipyard-*-base; each target of theirs is compared with its twin "
        "(CPU/base, rps/base)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    spec = SPECS[args.model]
    concs = [int(c) for c in args.concurrency.split(",")]
    targets = args.systems.split(",")
    for target in targets:
        if target_parts(target)[1] not in PROTOCOLS:
            raise SystemExit(f"unknown protocol in {target!r}; known: {sorted(PROTOCOLS)}")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs 2 cores: the servers on core 1, wrk on core 0")
    tools = {"taskset", *(generator(t) for t in targets)}
    if "h2load" in tools:
        tools.add("nghttp")  # the one-call check of the exact body h2load sends
    for tool in sorted(tools):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} missing: run bash bench/peers.sh serving")
    names = list(dict.fromkeys(target_parts(t)[0] for t in targets))
    if "mlflow" in names and not (PEERS_BIN / "mlflow").exists():
        raise SystemExit("MLflow's venv missing: run bash bench/peers.sh serving")
    if "mlserver" in names and not (MLSERVER_BIN / "mlserver").exists():
        raise SystemExit("MLServer's venv missing: run bash bench/peers.sh serving")

    load_at_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="shipyard-serving-bench-"))
    servers: dict[str, Server] = {}
    skipped: dict[str, str] = {}
    try:
        print(f"building the {spec.name} model (fit, peers' saves, Shipyard register) ...")
        mlflow_dir, mlserver_dir, rows, facts, baseline = build_models(
            spec, work, "mlflow" in names
        )
        print(f"  register (incl. ONNX export + parity check): {facts['register_s']:.1f} s")
        print(f"  ONNX: {facts['onnx']}")
        kinds = kinds_of(rows)
        records = [json_row(rows, i) for i in range(len(rows))]
        missing = sum(any(v is None for v in r.values()) for r in records)
        print(f"  {len(records)} request rows, {missing} with a missing value", flush=True)
        for name in names:
            grpc = any(
                target_parts(t)[0] == name and PROTOCOLS[target_parts(t)[1]].transport == "grpc"
                for t in targets
            )
            servers[name] = make_server(
                name, work, mlflow_dir, mlserver_dir, args.baseline_src, grpc
            )
        for s in servers.values():
            print(f"starting {s.name} (pinned to core {SERVER_CORE}) ...", flush=True)
            t0 = time.perf_counter()
            s.start()
            print(f"  ready in {time.perf_counter() - t0:.1f} s")
            s.signal(signal.SIGSTOP)

        # Bodies, a probe per target (same answer everywhere; unsupported hooks skipped),
        # and a warm-up run.
        lua: dict[str, Path] = {}  # the wrk script, or the body file h2load posts
        headers: dict[str, dict[str, str]] = {}
        answers: dict[str, list[float]] = {}

        def measure(s: Server, target: str, load: Path, conc: int, seconds: int) -> dict[str, Any]:
            cpu = s.cpu_seconds()
            r = drive(s, target, load, conc, seconds)
            r["cpu_us_per_request"] = (s.cpu_seconds() - cpu) / max(r["requests"], 1) * 1e6
            return r

        def drive(s: Server, target: str, load: Path, conc: int, seconds: int) -> dict[str, Any]:
            how = PROTOCOLS[target_parts(target)[1]]
            if how.transport == "grpc":
                check = s.name.startswith("shipyard")  # MLServer's metrics are off
                before = grpc_counts(s.base) if check else (0, 0)
                r = run_h2load(
                    f"http://{s.grpc}{how.path}", load, GRPC_HEADERS, conc, seconds, False
                )
                if check:  # every call h2load made was answered OK (grpc-status 0)
                    after = grpc_counts(s.base)
                    ok, refused = after[0] - before[0], after[1] - before[1]
                    if refused or ok < r["requests"]:
                        raise SystemExit(
                            f"{target}: {refused} gRPC calls refused, {ok} OK of "
                            f"{r['requests']} h2load made"
                        )
                    r["grpc_ok"] = ok
                return r
            if generator(target) == "h2load":
                return run_h2load(s.base + how.path, load, headers[target], conc, seconds, True)
            return run_wrk(s.base + how.path, load, conc, seconds)

        for target in targets:
            server, protocol = target_parts(target)
            how = PROTOCOLS[protocol]
            bodies = [how.body(r, kinds) for r in records]
            s = servers[server]
            s.signal(signal.SIGCONT)
            if how.transport == "grpc":
                # h2load posts one body: the first (a row with a missing income). It is
                # checked twice: grpcio's call gives the probabilities, nghttp (h2load's HTTP/2
                # stack) the grpc-status of the very bytes h2load sends.
                assert s.grpc, f"{server} has no gRPC port"
                lua[target] = work / f"{target.replace(':', '_')}.grpc"
                lua[target].write_bytes(bodies[0].data)
                code, answer = grpc_call(s.grpc, bodies[0])
                if code != "OK":
                    raise SystemExit(f"{target} answered {code}: {answer[:2000]!r}")
                grpc_status = nghttp_status(s.grpc, lua[target])
                if grpc_status != "0":
                    raise SystemExit(f"{target}: nghttp's call got grpc-status {grpc_status}")
                # the floor answers fixed probabilities: not compared
                answers[target] = [] if server == "grpc-floor" else how.proba(answer)
                measure(s, target, lua[target], 8, 2)
                s.signal(signal.SIGSTOP)
                continue
            status, answer = post(s.base + how.path, bodies[0])
            if status != 200:
                s.signal(signal.SIGSTOP)
                if protocol == "v2-binary":
                    skipped[target] = f"answers {status}: {answer[:200]!r}"
                    print(f"  skipping {target}: the server does not take it ({status})")
                    continue
                raise SystemExit(f"{target} answered {status}: {answer[:2000]!r}")
            answers[target] = how.proba(answer)
            if generator(target) == "h2load":  # an HTTP target for the generators' comparison
                lua[target] = work / f"{target.replace(':', '_').replace('+', '_')}.body"
                lua[target].write_bytes(bodies[0].data)
                headers[target] = bodies[0].headers
            else:
                lua[target] = write_lua(work / f"{target.replace(':', '_')}.lua", bodies)
            measure(s, target, lua[target], 8, 2)
            s.signal(signal.SIGSTOP)
        targets = [t for t in targets if t not in skipped]
        print(
            "first row's probabilities:", {t: np.round(a, 6).tolist() for t, a in answers.items()}
        )
        reference = next((a for a in answers.values() if a), None)
        for target, proba in answers.items():
            if proba and reference and not np.allclose(proba, reference, atol=1e-5):
                raise SystemExit(f"{target} answers {proba}, others {reference}")

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
                for target in targets:
                    server, protocol = target_parts(target)
                    s = servers[server]
                    s.signal(signal.SIGCONT)
                    time.sleep(0.5)
                    r = measure(s, target, lua[target], conc, args.duration)
                    s.signal(signal.SIGSTOP)
                    r.update(system=target, concurrency=conc, repeat=rep)
                    runs.append(r)
                    print(
                        f"  round {rep + 1}/{args.repeats} c={conc:<3} {target:26} "
                        f"{r['rps']:9.1f} req/s  p50 {r['p50_ms']:8.2f} ms  "
                        f"p99 {r['p99_ms']:8.2f} ms  server CPU "
                        f"{r['cpu_us_per_request']:6.0f} us/req",
                        flush=True,
                    )
        load = os.getloadavg()
    finally:
        for s in servers.values():
            s.stop()
        if not (locals().get("args") and args.keep):
            shutil.rmtree(work, ignore_errors=True)

    summary = summarize(runs, targets, concs, inproc_rounds)
    inprocess = {k: statistics.median(r[k] for r in inproc_rounds) for k in inproc_rounds[0]}
    print_table(summary, inprocess)
    for target, why in skipped.items():
        print(f"  not measured: {target} ({why})")
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
                    "loadavg_at_start": load_at_start,
                    "loadavg_at_end": load,
                },
                "model": facts,
                "skipped": skipped,
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


def baseline_of(target: str) -> str:
    """The ``-base`` twin of a Shipyard target (``shipyard-onnx:grpc`` ->
    ``shipyard-onnx-base:grpc``): the same server and protocol on ``--baseline-src``."""
    server, sep, protocol = target.partition(":")
    if not server.startswith("shipyard") or server.endswith("-base"):
        return ""
    return f"{server}-base{sep}{protocol}"


def summarize(
    runs: list[dict[str, Any]],
    systems: list[str],
    concs: list[int],
    inproc_rounds: list[dict[str, float]],
) -> list[dict[str, Any]]:
    by = {(r["system"], r["concurrency"], r["repeat"]): r for r in runs}
    reps = sorted({r["repeat"] for r in runs})
    out = []
    for n in systems:
        for c in concs:
            mine = [by[(n, c, k)] for k in reps]
            row: dict[str, Any] = {
                "system": n,
                "concurrency": c,
                "rps": statistics.median(r["rps"] for r in mine),
                "p50_ms": statistics.median(r["p50_ms"] for r in mine),
                "p99_ms": statistics.median(r["p99_ms"] for r in mine),
                "rps_rounds": [r["rps"] for r in mine],
                "cpu_us_per_request": statistics.median(r["cpu_us_per_request"] for r in mine),
            }
            base = baseline_of(n)
            if base in systems:  # the same target on --baseline-src's code, same rounds
                theirs = [by[(base, c, k)] for k in reps]
                row["cpu_ratio_baseline"] = statistics.median(
                    a["cpu_us_per_request"] / b["cpu_us_per_request"]
                    for a, b in zip(mine, theirs, strict=True)
                )
                row["rps_ratio_baseline"] = statistics.median(
                    a["rps"] / b["rps"] for a, b in zip(mine, theirs, strict=True)
                )
            if c == 1 and n.startswith("shipyard"):
                row["overhead_ms"] = statistics.median(
                    r["p50_ms"] - _baseline_ms(n, inproc_rounds[k])
                    for r, k in zip(mine, reps, strict=True)
                )
            peer_targets = [t for t in systems if target_parts(t)[0] in PEERS]
            for peer in peer_targets:  # mlflow, mlserver, mlserver:grpc
                if n in peer_targets:
                    continue
                theirs = [by[(peer, c, k)] for k in reps]
                ratios = [a["rps"] / b["rps"] for a, b in zip(mine, theirs, strict=True)]
                row[f"rps_ratio_{peer}"] = statistics.median(ratios)
                row[f"rps_ratio_{peer}_range"] = [min(ratios), max(ratios)]
                row[f"p99_ratio_{peer}"] = statistics.median(
                    a["p99_ms"] / b["p99_ms"] for a, b in zip(mine, theirs, strict=True)
                )
            out.append(row)
    return out


def print_table(summary: list[dict[str, Any]], inproc: dict[str, float]) -> None:
    print(
        f"\n{'target':26} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'x MLflow':>9} {'x MLServer':>11} {'x MLS gRPC':>11} {'p99/MLflow':>11} "
        f"{'CPU us/req':>10} {'CPU/base':>8} {'rps/base':>8}"
    )

    def ratio(r: dict[str, Any], peer: str) -> str:
        key = f"rps_ratio_{peer}"
        return f"{r[key]:.1f}x" if key in r else "-"

    for r in summary:
        p99r = f"{r['p99_ratio_mlflow']:.3f}" if "p99_ratio_mlflow" in r else "-"
        cpu_base = f"{r['cpu_ratio_baseline']:.2f}x" if "cpu_ratio_baseline" in r else "-"
        rps_base = f"{r['rps_ratio_baseline']:.2f}x" if "rps_ratio_baseline" in r else "-"
        print(
            f"{r['system']:26} {r['concurrency']:>4} {r['rps']:9.1f} {r['p50_ms']:8.2f} "
            f"{r['p99_ms']:8.2f} {ratio(r, 'mlflow'):>9} {ratio(r, 'mlserver'):>11} "
            f"{ratio(r, 'mlserver:grpc'):>11} {p99r:>11} {r['cpu_us_per_request']:10.0f} "
            f"{cpu_base:>8} {rps_base:>8}"
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
