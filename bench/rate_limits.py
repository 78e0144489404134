"""What a per-token rate limit costs a scoring request: none, in memory, through Redis.

    python bench/rate_limits.py [--requests 2000] [--rounds 5] [--redis redis://127.0.0.1:6379/0]

One store with the churn pipeline registered; the same app three ways (``ServeSettings(
rate_limit=...)`` off, in memory, in Redis), each sent ``--requests`` one-row requests in
process (``httpx.ASGITransport``, one client, one at a time) per round. Prints the median
time per request over the rounds and each way's ratio to no limit. The limit is far above
the load, so every request is counted and none refused.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

GOOD = {"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}


def _store(home: Path):  # type: ignore[no-untyped-def]
    from churn_data import churn_pipeline, labelled_churn
    from security.conftest import make_served
    from shipyard.packaging import prepare_archive

    X, y = labelled_churn(600, seed=1)
    pipe = churn_pipeline(X, y)
    return make_served(home, prepare_archive(pipe, X_train=X, y_train=y))


async def _round(app, token: str, n: int) -> float:  # type: ignore[no-untyped-def]
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            for _ in range(20):  # warm up
                await client.post(
                    "/models/churn/predict", json={"records": [GOOD]}, headers=headers
                )
            start = time.perf_counter()
            for _ in range(n):
                r = await client.post(
                    "/models/churn/predict", json={"records": [GOOD]}, headers=headers
                )
                assert r.status_code == 200, r.text
            return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    from rich.console import Console
    from rich.progress import Progress

    from shipyard.serving import create_app
    from shipyard.settings import ServeSettings

    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        served = _store(Path(tmp) / "home")
        ways = {
            "no limit": ServeSettings(),
            "in memory": ServeSettings(rate_limit="1000000/s"),
            "Redis": ServeSettings(rate_limit="1000000/s", rate_limit_redis_url=args.redis),
        }
        times: dict[str, list[float]] = {way: [] for way in ways}
        with Progress(console=console) as progress:
            task = progress.add_task("requests", total=args.rounds * len(ways))
            for _ in range(args.rounds):
                for way, settings in ways.items():  # interleaved: drift hits every way alike
                    app = create_app(served.store, settings=settings)
                    times[way].append(asyncio.run(_round(app, served.scorer_token, args.requests)))
                    progress.advance(task)
        served.store.close()
    base = statistics.median(times["no limit"])
    for way, values in times.items():
        median = statistics.median(values)
        console.print(f"{way:10} median {median * 1e6:7.0f} µs/request   x{median / base:.2f}")


if __name__ == "__main__":
    main()
