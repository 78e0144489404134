"""Trace a prediction: p50/p95 of ``find_prediction`` over a log of 10M predictions.

    PYTHONPATH=src .venv/bin/python bench/trace_lookup.py --root /work/trace-bench-data

Seeds (once; ``--reseed`` to redo) ``--rows`` predictions of ``--models`` models over
``--days`` days ending yesterday into the Hive layout, one part per model and day as a
compaction of day-long segments would leave them, and each day's id index with
``write_id_index``. Then times ``--lookups`` lookups of random logged server ids through the
index, ``--before`` of them with the index folder set aside (the fallback every log written
before the index takes: the parts of three days), and a few unknown ids. Prints one line per
case with p50, p95 and max in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.predlog import find_prediction, write_id_index

MS_PER_DAY = 86_400_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/work/trace-bench-data"))
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--before", type=int, default=20, help="lookups without the index")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    root: Path = args.root
    last = datetime.now(UTC).date() - timedelta(days=1)
    days = [last - timedelta(days=d) for d in range(args.days)][::-1]
    marker = root / ".seeded"
    if args.reseed or not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        per_day = args.rows // args.days
        with ProcessPoolExecutor(args.workers) as pool:
            jobs = [(str(root), d, per_day, args.models, n) for n, d in enumerate(days)]
            list(pool.map(_seed_day, *zip(*jobs, strict=True), chunksize=4))
        marker.write_text(f"{args.rows} {args.models} {args.days}\n")
        print(f"seeded {args.rows:,} rows in {time.perf_counter() - started:.0f} s")
    rng = random.Random(7)
    ids = [_random_id(root, rng.choice(days), rng) for _ in range(args.lookups)]
    _report("index, logged server ids", _time(root, ids))
    unknown = [_unknown_id(rng.choice(days), rng) for _ in range(max(args.lookups // 10, 5))]
    _report("index, unknown server ids", _time(root, unknown, expect=False))
    batch = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(5)]
    _report("index, unknown batch ids (every day)", _time(root, batch, expect=False))
    if args.before:
        aside = root / "ids.aside"
        os.replace(root / "ids", aside)
        try:
            _report("no index (before)", _time(root, ids[: args.before]))
        finally:
            os.replace(aside, root / "ids")


def _seed_day(root: str, day: date, rows: int, models: int, n: int) -> None:
    """One day: ``rows`` predictions spread over the day and over the models."""
    rng = np.random.default_rng(n)
    start_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    ms = np.sort(rng.integers(start_ms, start_ms + MS_PER_DAY, rows))
    noise = rng.integers(0, 1 << 40, rows)
    ids = pa.array(
        [f"{m:011x}{r:010x}{i % 4096:05x}" for i, (m, r) in enumerate(zip(ms, noise, strict=True))]
    )
    model = rng.integers(0, models, rows)
    table = pa.table(
        {
            "prediction_id": ids,
            "ts": pa.array(ms * 1000, pa.timestamp("us", tz="UTC")),
            "arm": pa.array(["production"] * rows),
            "status": pa.array(["ok"] * rows),
            "reason": pa.nulls(rows, pa.string()),
            "latency_ms": pa.array(rng.random(rows) * 5),
            "in__age": pa.array(rng.integers(18, 90, rows)),
            "in__plan": pa.array(rng.choice(["basic", "pro", "team"], rows)),
            "prediction": pa.array(rng.choice(["churn", "stay"], rows)),
            "proba__churn": pa.array(rng.random(rows)),
        }
    )
    segment = f"{start_ms * 1_000_000:016x}"
    index = []
    order = np.argsort(model, kind="stable")
    table, model = table.take(pa.array(order)), model[order]
    bounds = np.searchsorted(model, np.arange(models + 1))
    for m in range(models):
        rows_m = table.slice(int(bounds[m]), int(bounds[m + 1] - bounds[m]))
        if not rows_m.num_rows:
            continue
        name, version = f"model-{m:04d}", 1 + m % 3
        rel = (
            f"predictions/model={name}/version={version}/date={day}/part-{segment}-{m:04x}.parquet"
        )
        path = Path(root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows_m, path, compression="zstd")
        k = rows_m.num_rows
        index.append(
            pa.table(
                {
                    "prediction_id": rows_m["prediction_id"],
                    "model": pa.array([name] * k),
                    "version": pa.array([version] * k, pa.int64()),
                    "part": pa.array([rel] * k),
                }
            )
        )
    write_id_index(root, day, pa.concat_tables(index))


def _random_id(root: Path, day: date, rng: random.Random) -> str:
    (merged,) = (root / "ids" / f"date={day}").glob("merged-*.parquet")
    column = pq.read_table(merged, columns=["prediction_id"])["prediction_id"]
    return str(column[rng.randrange(len(column))].as_py())


def _unknown_id(day: date, rng: random.Random) -> str:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    return f"{start + rng.randrange(MS_PER_DAY):011x}{rng.getrandbits(40):010x}fffff"


def _time(root: Path, ids: list[str], *, expect: bool = True) -> list[float]:
    out = []
    for pid in ids:
        started = time.perf_counter()
        found = find_prediction(root, pid)
        out.append((time.perf_counter() - started) * 1000)
        if (found is not None) != expect or (found is not None and found["prediction_id"] != pid):
            raise SystemExit(f"wrong answer for {pid}: {found}")
    return out


def _report(case: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print(
        f"{case:40s} n={len(ms):4d}  p50 {statistics.median(ms):8.1f} ms  "
        f"p95 {p95:8.1f} ms  max {ms[-1]:8.1f} ms"
    )


if __name__ == "__main__":
    main()
