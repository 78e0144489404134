"""Engines: pandas vs a Spark standalone cluster vs a Dask cluster, on the same 10M rows.

Data: ``--rows`` rows (default 10,000,000) of the batch benchmark's 20 columns (14 numeric, 6
categorical; ``bench/batch.py``'s ``make_frame``), generated in 1M-row pieces into one Parquet
file of 250k-row groups. Model: that benchmark's pipeline (scaler + one-hot +
HistGradientBoostingClassifier, ``--iterations`` trees), registered in a throwaway home.

Two jobs, each the engine's ``Engine`` method that ``shipyard score`` and ``shipyard monitor
run --current`` call:

- score: ``engine.score(loaded, in.parquet, out)`` (pandas one file in 50k-row chunks; Spark
  and Dask a folder of part files);
- monitor: ``engine.count(reference profile, in.parquet, schema)`` then ``build_report``.

Clusters, started once and warmed up on 20k rows before timing (start-up is reported apart;
neither is in the times):
Spark standalone (a master and 2 workers of 1 core and 1 GB each, from pyspark's
``spark-class``, one 768 MB executor per worker) and a Dask ``LocalCluster`` (2 worker
processes of 1 thread). The pandas engine uses one process. Rounds alternate the engines, so
load on the shared machine hits each; the medians and the ratios to pandas are printed.
Every round checks that the engines agree (rows scored; drift verdicts and counts).

Run: ``.venv/bin/python bench/engines/run.py [--rows 10000000] [--repeat 3]
[--engines pandas spark dask] [--jobs score monitor]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent / "tests")]


def write_data(path: Path, rows: int) -> None:
    """``rows`` rows in 1M-row pieces: memory stays at one piece."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from batch import make_frame

    writer = None
    done = 0
    seed = 1
    while done < rows:
        n = min(1_000_000, rows - done)
        table = pa.Table.from_pandas(make_frame(n, seed=seed)[0], preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=250_000)
        done, seed = done + n, seed + 1
    assert writer is not None
    writer.close()


def spark_session(master: str, src: Path) -> Any:
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    return (
        SparkSession.builder.master(master)
        .appName("shipyard-bench-engines")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.executor.memory", "768m")
        .config("spark.executor.cores", "1")
        .config("spark.executorEnv.PYTHONPATH", str(src))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=100, help="trees of the model")
    parser.add_argument("--engines", nargs="+", default=["pandas", "spark", "dask"])
    parser.add_argument("--jobs", nargs="+", default=["score", "monitor"])
    parser.add_argument("--keep", type=Path, help="folder for the data (default: a temp one)")
    args = parser.parse_args()

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="shipyard-bench-engines-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.update(SHIPYARD_HOME=str(folder / "home"), SHIPYARD_USER="bench")
    os.environ.pop("SHIPYARD_DB_URL", None)

    import shipyard
    from batch import make_frame, make_pipeline
    from shipyard import Client, Settings
    from shipyard.dataset import Profile
    from shipyard.engines import DaskEngine, Engine, PandasEngine, SparkEngine
    from shipyard.errors import NotFound
    from shipyard.monitoring import build_report

    src = folder / "in.parquet"
    if not src.exists():
        started = time.perf_counter()
        with console.status(f"Writing {args.rows:,} rows to {src}"):
            write_data(src, args.rows)
        console.print(f"data: {args.rows:,} rows in {time.perf_counter() - started:.1f} s")
    X_train, y_train = make_frame(20_000, seed=0)
    model = make_pipeline()
    model.set_params(clf__max_iter=args.iterations)  # type: ignore[attr-defined]
    model.fit(X_train, y_train)  # type: ignore[attr-defined]
    client = Client(Settings()).open()
    name = f"bench{args.iterations}"
    try:
        loaded = client.load(f"{name}:1")  # a kept folder from an earlier run
    except NotFound:
        client.register(model, name=name, X_train=X_train, y_train=y_train, onnx=False)
        loaded = client.load(f"{name}:1")
    reference = Profile.model_validate(loaded.archive.reference_profile["inputs"])
    schema = loaded.archive.schema

    engines: dict[str, Engine] = {}
    startup: dict[str, float] = {}
    stop: list[Any] = []
    if "pandas" in args.engines:
        engines["pandas"] = PandasEngine()
    if "spark" in args.engines:
        from spark_cluster import SparkStandalone

        started = time.perf_counter()
        cluster = SparkStandalone(folder / "spark", workers=2, memory="1g").start()
        session = spark_session(cluster.master_url, Path(shipyard.__file__).parents[1])
        session.range(4).count()  # executors up
        startup["spark"] = time.perf_counter() - started
        engines["spark"] = SparkEngine()
        stop += [session.stop, cluster.stop]
    if "dask" in args.engines:
        from distributed import LocalCluster

        started = time.perf_counter()
        dask_cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
        startup["dask"] = time.perf_counter() - started
        engines["dask"] = DaskEngine(scheduler=dask_cluster.scheduler_address)
        stop.append(dask_cluster.close)
    for engine_name, seconds in startup.items():
        console.print(f"{engine_name} cluster start-up (not in the times): {seconds:.1f} s")
    # Warm-up on 20k rows: a fresh worker process imports scikit-learn, pandas and Shipyard
    # and loads the model once (27 s for scikit-learn alone on a saturated machine); the
    # pandas engine's process has done so already. Not in the times either.
    small = folder / "warmup.parquet"
    make_frame(20_000, seed=2)[0].to_parquet(small, index=False)
    with console.status("Warming up the workers"):
        for engine_name, engine in engines.items():
            dst = folder / f"warmup-{engine_name}.parquet"
            shutil.rmtree(dst, ignore_errors=True)
            dst.unlink(missing_ok=True)
            engine.score(loaded, small, dst)
            engine.count(reference, small, schema=schema)

    times: dict[tuple[str, str], list[float]] = {}
    outcome: dict[tuple[str, str], Any] = {}
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("runs", total=args.repeat * len(engines) * len(args.jobs))
            for round_ in range(args.repeat):
                for job in args.jobs:
                    for engine_name, engine in engines.items():
                        progress.update(
                            task, description=f"round {round_ + 1}: {job} on {engine_name}"
                        )
                        dst = folder / f"out-{engine_name}.parquet"
                        shutil.rmtree(dst, ignore_errors=True)
                        dst.unlink(missing_ok=True)
                        started = time.perf_counter()
                        if job == "score":
                            result: Any = engine.score(loaded, src, dst).rows
                        else:
                            report = build_report(engine.count(reference, src, schema=schema))
                            result = (report.n_rows, report.flagged())
                        times.setdefault((job, engine_name), []).append(
                            time.perf_counter() - started
                        )
                        outcome.setdefault((job, engine_name), result)
                        assert result == outcome[(job, next(iter(engines)))], (job, result)
                        progress.advance(task)
    finally:
        for close in stop:
            close()
        client.close()

    console.print(
        f"\nrows={args.rows:,}, 20 columns, HistGradientBoosting {args.iterations} trees; "
        f"medians of {args.repeat}; os.cpu_count()={os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for job in args.jobs:
        base = statistics.median(times[(job, "pandas")]) if "pandas" in engines else None
        for engine_name in engines:
            runs = times[(job, engine_name)]
            median = statistics.median(runs)
            ratio = f"  x{base / median:.2f} vs pandas" if base else ""
            rounded = [round(t, 1) for t in runs]
            console.print(f"{job:8} {engine_name:7} median {median:8.1f} s{ratio}  runs {rounded}")
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
