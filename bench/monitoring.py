"""Drift checks: Shipyard vs Evidently's DataDriftPreset on the same data, 20 mixed features.

Data: a 100,000-row reference and current windows of 100k and 1M rows (13 numeric, 7
categorical features, numpy-generated, fixed seeds) with five injected drifts:

- ``income``: mean shift of 0.25 sigma;          - ``score``: std x 1.5;
- ``colour``: 5% of rows take a new category;    - ``balance``: missing share 1% -> 20%;
- ``plan``: category frequencies change.

Each measurement runs in a fresh subprocess, so its peak memory (``VmHWM``) is its own:

- shipyard (pandas engine): load the reference profile (JSON, as stored in the archive; built
  once before, time reported apart), stream the current Parquet file in 100k-row chunks
  (``file_chunks``, as ``shipyard monitor run --current`` does), ``build_report``;
- evidently: ``pd.read_parquet`` of both files, ``Report([DataDriftPreset()],
  include_tests=True).run(current, reference)``, read the per-column verdicts; run with the
  Evidently venv's interpreter (``bash bench/peers.sh`` builds it);
- spark (information): ``--engine spark``'s ``spark_accumulate`` in local mode, time only
  (its memory is mostly the JVM's).

Time is the worker's own wall time from the first read to the verdicts (imports and interpreter
start-up excluded, for both tools). "Detected" lists the injected drifts each tool flags
(Shipyard: drift or data-quality breach; Evidently: column drift), "false" the undrifted
features it flags anyway.

Run: ``.venv/bin/python bench/monitoring.py [--rows 100000 1000000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
EVIDENTLY_PY = HERE / ".peers" / "evidently-venv" / "bin" / "python"
SHIPYARD_PY = HERE.parent / ".venv" / "bin" / "python"
REFERENCE_ROWS = 100_000
DRIFTED = ("income", "score", "colour", "balance", "plan")


def make_frame(n: int, seed: int, *, drift: bool) -> Any:
    """``n`` rows of 20 mixed features; with ``drift``, the five drifts of the docstring."""
    import pandas as pd

    rng = np.random.default_rng(seed)

    def choice(values: list[str], p: list[float]) -> np.ndarray:
        codes = np.searchsorted(np.cumsum(p) / np.sum(p), rng.random(n), side="right")
        return np.asarray(values, dtype=object)[np.minimum(codes, len(values) - 1)]

    income = rng.normal(50_000, 12_000, n) + (0.25 * 12_000 if drift else 0.0)
    score = 600 + rng.normal(0, 80, n) * (1.5 if drift else 1.0)
    balance = rng.lognormal(8, 1, n)
    balance[rng.random(n) < (0.2 if drift else 0.01)] = np.nan
    colour = choice(["red", "green", "blue"], [0.5, 0.3, 0.2])
    if drift:
        colour[rng.random(n) < 0.05] = "purple"
    plan_p = [0.3, 0.25, 0.2, 0.13, 0.12] if drift else [0.4, 0.25, 0.15, 0.12, 0.08]
    ratio = rng.normal(0.3, 0.05, n)
    ratio[rng.random(n) < 0.02] = np.nan
    return pd.DataFrame(
        {
            "income": income,
            "score": score,
            "balance": balance,
            "temperature": rng.normal(15, 8, n),
            "weight": rng.normal(70, 12, n),
            "height": rng.normal(170, 10, n),
            "spend": rng.lognormal(3, 0.8, n),
            "duration": rng.lognormal(1, 1.2, n),
            "ratio": ratio,
            "visits": rng.poisson(3, n),
            "items": rng.poisson(12, n),
            "age": rng.integers(18, 91, n),
            "tenure": rng.integers(0, 120, n),
            "colour": colour,
            "plan": choice(["basic", "plus", "pro", "team", "enterprise"], plan_p),
            "city": choice([f"city_{i:02d}" for i in range(12)], list(range(12, 0, -1))),
            "code": choice([f"code_{i:03d}" for i in range(200)], list(1 / np.arange(1, 201))),
            "channel": choice(["web", "app", "store", "phone"], [0.4, 0.3, 0.2, 0.1]),
            "segment": choice(["a", "b"], [0.9, 0.1]),
            "region": choice(["north", "south", "east", "west"], [0.25] * 4),
        }
    )


def peak_mb() -> float:
    """Peak RSS of this process in MB: ``VmHWM``, which starts afresh at ``exec`` (unlike
    ``ru_maxrss``, which a child inherits from the parent that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- workers (one per subprocess) ---------------------------------------------------------------


def worker_shipyard(reference: Path, current: Path) -> dict[str, Any]:
    from shipyard.dataset import Profile, file_chunks
    from shipyard.monitoring import DriftAccumulator, build_report, chunk_rows

    baseline = peak_mb()
    started = time.perf_counter()
    profile = Profile.model_validate_json(reference.read_text())
    accumulator = DriftAccumulator(profile)
    _, chunks = file_chunks(current, rows=chunk_rows(len(profile.columns)))
    for chunk in chunks:
        accumulator.update(chunk)
    report = build_report(accumulator)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "flagged": report.flagged(),
        "rows": report.n_rows,
        "baseline_mb": baseline,
    }


def worker_spark(reference: Path, current: Path) -> dict[str, Any]:
    from pyspark.sql import SparkSession

    from shipyard.dataset import Profile
    from shipyard.monitoring import build_report, spark_accumulate

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.range(1).count()  # JVM start-up is not the aggregation's time
    started = time.perf_counter()
    profile = Profile.model_validate_json(reference.read_text())
    report = build_report(spark_accumulate(profile, spark.read.parquet(str(current))))
    seconds = time.perf_counter() - started
    spark.stop()
    flagged = report.flagged()
    return {"seconds": seconds, "flagged": flagged, "rows": report.n_rows, "baseline_mb": 0.0}


def worker_evidently(reference: Path, current: Path) -> dict[str, Any]:
    import warnings

    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    warnings.filterwarnings("ignore")
    baseline = peak_mb()
    started = time.perf_counter()
    ref = pd.read_parquet(reference)
    cur = pd.read_parquet(current)
    snapshot = Report([DataDriftPreset()], include_tests=True).run(cur, ref)
    result = snapshot.dict()
    flagged = []
    for test in result["tests"]:
        params = test["metric_config"]["params"]
        if params["type"] == "evidently:metric_v2:ValueDrift" and test["status"] == "FAIL":
            flagged.append(params["column"])
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "flagged": sorted(flagged),
        "rows": len(cur),
        "baseline_mb": baseline,
    }


WIDE_NUMERIC, WIDE_INTEGER, WIDE_TEXT = 850, 100, 50


def wide_batch(n: int, seed: int) -> Any:
    """``n`` rows of 1,000 columns: float32 normals, small integers, 10-category text."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    numeric = rng.standard_normal((WIDE_NUMERIC, n), dtype=np.float32)
    numeric += np.arange(WIDE_NUMERIC, dtype=np.float32)[:, None]
    integers = rng.integers(0, 50, (WIDE_INTEGER, n))
    words = np.asarray([f"w{i}" for i in range(10)], dtype=object)
    columns = {f"x{i}": numeric[i] for i in range(WIDE_NUMERIC)}
    columns |= {f"k{i}": integers[i] for i in range(WIDE_INTEGER)}
    columns |= {f"t{i}": pa.array(words[rng.integers(0, 10, n)]) for i in range(WIDE_TEXT)}
    return pa.table(columns)


def worker_wide(home: Path, current: Path) -> dict[str, Any]:
    """``shipyard monitor run wide:1 --current FILE`` in this process (the CLI, progress bar
    and all, on stderr's terminal if there is one)."""
    os.environ["SHIPYARD_HOME"] = str(home)
    os.environ["SHIPYARD_USER"] = "bench"
    from shipyard.cli import run_cli

    baseline = peak_mb()
    started = time.perf_counter()
    code = run_cli(["monitor", "run", "wide:1", "--current", str(current), "--json"])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "exit": code, "baseline_mb": baseline}


def wide(folder: Path, rows: int) -> None:
    """Register a 1,000-column model, write a ``rows`` x 1,000 Parquet file in 20k-row groups,
    and time ``shipyard monitor run --current`` on it once."""
    import pyarrow.parquet as pq
    from sklearn.dummy import DummyClassifier

    from shipyard import Client, Settings

    home = folder / "home"
    os.environ["SHIPYARD_HOME"] = str(home)
    os.environ["SHIPYARD_USER"] = "bench"
    X = wide_batch(20_000, 1).to_pandas()
    y = (X["x0"] > 0).astype(int)
    c = Client(Settings()).open()
    c.register(DummyClassifier().fit(X, y), name="wide", X_train=X, y_train=y, onnx=False)
    c.close()
    del X
    path = folder / "wide.parquet"
    started = time.perf_counter()
    step = 20_000
    with pq.ParquetWriter(path, wide_batch(1, 0).schema) as writer:
        for i in range(0, rows, step):
            writer.write_table(wide_batch(min(step, rows - i), 100 + i), row_group_size=step)
    print(
        f"wide: wrote {rows:,} x 1,000 ({path.stat().st_size / 1e9:.1f} GB) in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    args = [str(SHIPYARD_PY), __file__, "--worker", "wide", str(home), str(path)]
    done = subprocess.run(args, stdout=subprocess.PIPE, text=True, check=False)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"wide: shipyard monitor run --current, {rows:,} rows x 1,000 columns: "
        f"{result['seconds']:.1f} s, peak {result['peak_mb']:.0f} MB "
        f"({result['peak_mb'] - result['baseline_mb']:.0f} MB over imports), exit {result['exit']}"
    )


WORKERS = {
    "shipyard": worker_shipyard,
    "spark": worker_spark,
    "evidently": worker_evidently,
    "wide": worker_wide,
}


# -- driver -------------------------------------------------------------------------------------


def prepare(folder: Path, sizes: list[int]) -> dict[str, Any]:
    """Reference and current files, and the reference profile (timed: it is built once, at
    registration, and stored in the archive)."""
    from shipyard.dataset import profile_frame

    reference = make_frame(REFERENCE_ROWS, 1, drift=False)
    reference.to_parquet(folder / "reference.parquet", index=False)
    started = time.perf_counter()
    profile = profile_frame(reference)
    profile_seconds = time.perf_counter() - started
    (folder / "profile.json").write_text(profile.model_dump_json())
    for n in sizes:
        make_frame(n, 2, drift=True).to_parquet(folder / f"current_{n}.parquet", index=False)
    return {"profile_seconds": profile_seconds}


def measure(tool: str, folder: Path, n: int) -> dict[str, Any]:
    python = EVIDENTLY_PY if tool == "evidently" else SHIPYARD_PY
    reference = folder / ("reference.parquet" if tool == "evidently" else "profile.json")
    args = [
        str(python),
        __file__,
        "--worker",
        tool,
        str(reference),
        str(folder / f"current_{n}.parquet"),
    ]
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    flagged = runs[0]["flagged"]
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "peak_mb": statistics.median(r["peak_mb"] for r in runs),
        "work_mb": statistics.median(r["peak_mb"] - r["baseline_mb"] for r in runs),
        "detected": [d for d in DRIFTED if d in flagged],
        "false": [f for f in flagged if f not in DRIFTED],
        "runs": len(runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--spark-repeat", type=int, default=1, help="0 to skip Spark")
    parser.add_argument(
        "--wide", type=int, metavar="ROWS", help="only the 1,000-column run, e.g. 1000000"
    )
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = WORKERS[args.worker](Path(args.paths[0]), Path(args.paths[1]))
        result["peak_mb"] = peak_mb()
        print(json.dumps(result))
        return
    if args.wide:
        with tempfile.TemporaryDirectory(prefix="bench-monitoring-wide-") as tmp:
            wide(Path(tmp), args.wide)
        return
    if not EVIDENTLY_PY.exists():
        sys.exit(f"No Evidently venv at {EVIDENTLY_PY}: run 'bash bench/peers.sh' first.")
    with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as tmp:
        folder = Path(tmp)
        facts = prepare(folder, args.rows)
        print(
            f"reference: {REFERENCE_ROWS:,} rows x 20; profile built once in "
            f"{facts['profile_seconds']:.2f} s (stored in the archive at registration)"
        )
        results: dict[tuple[str, int], dict[str, Any]] = {}
        for n in args.rows:
            plan = [("shipyard", args.repeat), ("evidently", args.repeat)]
            if args.spark_repeat:
                plan.append(("spark", args.spark_repeat))
            for tool, repeat in plan:
                runs = [measure(tool, folder, n) for _ in range(repeat)]
                results[tool, n] = summary = summarise(runs)
                memory = (
                    "  (not measured: mostly the JVM's)"
                    if tool == "spark"
                    else f"{summary['peak_mb']:8.0f} MB ({summary['work_mb']:5.0f} over imports)"
                )
                print(
                    f"{n:>9,} rows  {tool:<9}  {summary['seconds']:8.2f} s  {memory}  "
                    f"detected {len(summary['detected'])}/5 "
                    f"{summary['detected']}  false {summary['false']}  (median of "
                    f"{summary['runs']})",
                    flush=True,
                )
        print()
        for n in args.rows:
            ours, theirs = results["shipyard", n], results["evidently", n]
            print(
                f"{n:>9,} rows: Shipyard is {theirs['seconds'] / ours['seconds']:.1f}x faster "
                f"and uses {ours['peak_mb'] / theirs['peak_mb']:.2f}x Evidently's peak memory "
                f"(1/{theirs['peak_mb'] / ours['peak_mb']:.1f}; above imports "
                f"1/{theirs['work_mb'] / ours['work_mb']:.1f}); detected "
                f"{len(ours['detected'])}/5 vs {len(theirs['detected'])}/5, false alarms "
                f"{len(ours['false'])} vs {len(theirs['false'])}"
            )


if __name__ == "__main__":
    main()
