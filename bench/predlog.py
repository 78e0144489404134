"""Prediction log throughput: sustained appends with the background fsync and compaction on.

    python bench/predlog.py [--seconds 10] [--batch 1] [--repeats 3] [--compactor process]
                            [--records]

One process logs the answers of a model with 20 input columns (14 numbers, 6 categories), a
class and two probabilities, as the server does after each request: ``append_answers`` with
``--batch`` rows per call (1: the single-row request case); ``--records`` gives the same rows
to ``append`` as record dicts instead (built before timing). Every call is timed. Then it
waits until the compactor has moved everything to Parquet, and counts the rows there with
DuckDB.

Prints, per run and as the median of runs: appends/s while appending, predictions/s end to
end (appending + draining the last segment), the per-call latency median/p99/max, the
largest queue depth and lag seen, and the CPU time per record (all threads of this process and,
with ``--compactor process``, the compactor process, counted once it ended). The
machines are shared and noisy: read the medians, and the CPU time, which other processes
do not inflate as much as wall-clock rates.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from shipyard.predlog import Answers, PredictionLog

NUMERIC = [f"num_{i}" for i in range(14)]
CATEGORICAL = [f"cat_{i}" for i in range(6)]


def make_answers(n: int, batch: int) -> list[Answers]:
    """Distinct answered requests of ``batch`` rows, prepared before timing (the server has
    them already)."""
    out = []
    for start in range(0, n, batch):
        rows, proba = [], []
        for i in range(start, start + batch):
            values: list[Any] = [(i * 7 + k) * 0.37 for k in range(len(NUMERIC))]
            values += [f"level_{(i + k) % 5}" for k in range(len(CATEGORICAL))]
            rows.append(values)
            p = (i % 100) / 100
            proba.append([1 - p, p])
        out.append(
            Answers(
                model="churn",
                version=3,
                arm="production" if start % 10 else "canary",
                ts=time.time(),
                latency_ms=0.4,
                ids=[str(uuid.uuid4()) for _ in rows],
                columns=NUMERIC + CATEGORICAL,
                rows=rows,
                predictions=[int(p > 0.5) for _, p in proba],
                proba=proba,
                classes=["0", "1"],
            )
        )
    return out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(seconds: float, pool: list[Answers], as_records: bool, compactor: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        log = PredictionLog(Path(tmp) / "predlog", compactor=compactor).open()  # type: ignore[arg-type]
        latencies: list[int] = []
        n = 0
        max_depth = 0
        max_lag = 0.0
        clock = time.perf_counter_ns
        cpu_start = time.process_time() + _children_cpu()
        start = clock()
        deadline = start + int(seconds * 1e9)
        records = [a.records() for a in pool] if as_records else []
        batch = len(pool[0].ids)
        calls = 0
        while True:
            t0 = clock()
            if as_records:
                log.append(records[calls % len(records)])
            else:
                log.append_answers(pool[calls % len(pool)])
            t1 = clock()
            calls += 1
            latencies.append(t1 - t0)
            n += batch
            if n % 20_000 < batch:
                max_depth = max(max_depth, log.queue_depth)
                max_lag = max(max_lag, log.lag_seconds)
                if t1 >= deadline:
                    break
        appended = clock()
        log.flush()  # the last open segment: what a shutdown would compact
        drained = clock()
        cpu = time.process_time() - cpu_start  # all threads: appends, fsync, compaction
        stored = int(log.query("SELECT count(*) AS n FROM predictions", model="churn")["n"][0])
        log.close()  # ends the compactor process: its CPU time is counted from here on
        cpu += _children_cpu()
        assert stored == n, (stored, n)
    latencies.sort()
    return {
        "appends_per_s": n / ((appended - start) / 1e9),
        "end_to_end_per_s": n / ((drained - start) / 1e9),
        "p50_us": latencies[len(latencies) // 2] / 1e3,
        "p99_us": latencies[int(len(latencies) * 0.99)] / 1e3,
        "max_us": latencies[-1] / 1e3,
        "max_queue_depth": max_depth,
        "max_lag_s": max_lag,
        "records": n,
        "cpu_us_per_record": cpu / n * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=1, help="rows per call (per request)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--compactor", choices=["process", "thread"], default="process", help="where to compact"
    )
    parser.add_argument(
        "--records", action="store_true", help="append record dicts (append) instead of answers"
    )
    args = parser.parse_args()
    pool = make_answers(50_000, args.batch)
    runs = []
    for i in range(args.repeats):
        result = run(args.seconds, pool, args.records, args.compactor)
        runs.append(result)
        print(
            f"run {i + 1}: {result['appends_per_s']:,.0f} appends/s, "
            f"{result['end_to_end_per_s']:,.0f} predictions/s end to end, "
            f"p50 {result['p50_us']:.1f} us, p99 {result['p99_us']:.1f} us, "
            f"max {result['max_us']:.0f} us, max queue {result['max_queue_depth']:,.0f}, "
            f"max lag {result['max_lag_s']:.1f} s, "
            f"CPU {result['cpu_us_per_record']:.1f} us/record ({result['records']:,} records)"
        )
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"median of {len(runs)} ({'records' if args.records else 'answers'}, batch {args.batch}, "
        f"{args.compactor}): "
        f"{med['appends_per_s']:,.0f} appends/s, "
        f"{med['end_to_end_per_s']:,.0f} predictions/s end to end, "
        f"p50 {med['p50_us']:.1f} us, p99 {med['p99_us']:.1f} us, "
        f"CPU {med['cpu_us_per_record']:.1f} us/record (appends + fsync + compaction)"
    )


if __name__ == "__main__":
    main()
