"""What usage accounting adds to a scoring request, measured in process (no network).

Times, as medians of several repeats:

1. one whole ``POST /models/churn/predict`` (1 row, a bearer token with a team, the
   prediction log on) through the app's ASGI callable, as uvicorn calls it;
2. the pieces usage adds to it: the two ``perf_counter()`` reads around the model call,
   ``UsageCounter.count`` (the ``/metrics`` counters), and the longer answer line (caller,
   team, compute_ms, request_rows) the log encodes per row (1 and 100 rows).

    PYTHONPATH=src python bench/health/hot_path.py [--requests 3000] [--repeats 7]

Prints each figure and the added cost as a share of the whole request. Times are CPU time of
the measuring thread (``time.thread_time``), so that other work on the machine does not count;
the whole request's figure leaves out the log's background fsync thread.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

import orjson
from rich.progress import Progress

from shipyard import Client, Settings
from shipyard.auth import Tokens
from shipyard.config import ProjectConfig
from shipyard.packaging import prepare_archive
from shipyard.predlog import PredictionLog
from shipyard.registry import Registry
from shipyard.serving import create_app
from shipyard.serving._system_metrics import UsageCounter
from shipyard.settings import ServeSettings
from shipyard.store import Store

ROW = {"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}


def _model() -> Any:
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50_000, 10_000, n),
            "tenure": rng.uniform(0, 10, n),
            "plan": rng.choice(["basic", "pro"], n),
        }
    )
    y = pd.Series(np.where(rng.random(n) > 0.5, "churn", "stay"))
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["age", "income", "tenure"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(X, y)
    return pipe, X, y


async def _requests(app: Any, token: str, n: int, progress: Progress) -> list[float]:
    body = orjson.dumps({"records": [ROW]})
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/models/churn/predict",
        "raw_path": b"/models/churn/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    times = []
    task = progress.add_task("requests", total=n)
    for _ in range(n):
        start = time.thread_time()  # CPU time of the event loop's thread (see _per_call)
        await app(dict(scope), receive, send)
        times.append(time.thread_time() - start)
        progress.advance(task)
    assert set(status) == {200}, set(status)
    return times


async def _serve(store: Store, log: PredictionLog, token: str, n: int, repeats: int) -> float:
    app = create_app(store, settings=ServeSettings(), prediction_log=log)
    medians = []
    with Progress() as progress:
        async with app.router.lifespan_context(app):
            await _requests(app, token, 200, progress)  # warm-up (token cache, layouts)
            for _ in range(repeats):
                medians.append(statistics.median(await _requests(app, token, n, progress)))
    return statistics.median(medians)


def _per_call(stmt: Any, number: int, repeats: int) -> float:
    # CPU time of this thread: on a machine shared with other work, wall time would count the
    # time the thread waited for a core.
    times = timeit.repeat(stmt, number=number, repeat=repeats, timer=time.thread_time)
    return statistics.median(t / number for t in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = Store(f"sqlite:///{root / 'db'}", str(root / "artifacts"), creator="admin").open()
        pipe, X, y = _model()
        # Promotion without a gate record: the bench is about serving, not the gates.
        no_gates = ProjectConfig.model_validate({"gates": {"require": False}})
        registry = Registry(store, no_gates)
        registry.register(prepare_archive(pipe, X_train=X, y_train=y), name="churn", actor="alice")
        admin = Client(Settings(user="admin"), store=store, project=no_gates).open()
        admin.users.set_role("bob", "approver", actor="admin")
        bob = Client(Settings(user="bob"), store=store, project=no_gates).open()
        bob.approve("churn", 1, reason="bench")
        registry.promote("churn", 1, actor="alice")
        token = Tokens(store).create(role="scorer", name="web", actor="admin", team="risk")[0]
        log = PredictionLog(root / "predlog").open()
        try:
            request = asyncio.run(_serve(store, log, token, args.requests, args.repeats))
        finally:
            log.close()
            store.close()

    usage = UsageCounter()
    count = _per_call(lambda: usage.count("risk", "churn", 1, 1, 0.0002), 200_000, args.repeats)
    clock = _per_call(time.perf_counter, 1_000_000, args.repeats)
    old = [
        0,
        "0190000000000000000000001",
        1.7e9,
        0.61,
        "production",
        "stay",
        [40, 52000.0, 2.5, "pro"],
        [0.4, 0.6],
    ]
    new = [*old, "web", "risk", 0.203, 1]
    line_old = _per_call(lambda: orjson.dumps(old), 500_000, args.repeats)
    line_new = _per_call(lambda: orjson.dumps(new), 500_000, args.repeats)
    added_1 = count + 2 * clock + (line_new - line_old)
    added_100 = count + 2 * clock + 100 * (line_new - line_old)
    print(f"whole request (1 row, token, log on), median CPU: {request * 1e6:5.1f} us")
    print(f"UsageCounter.count:                            {count * 1e9:8.0f} ns")
    print(f"perf_counter() (x2 per request):               {clock * 1e9:8.0f} ns")
    print(f"answer line without usage values:              {line_old * 1e9:8.0f} ns/row")
    print(f"answer line with usage values:                 {line_new * 1e9:8.0f} ns/row")
    print(
        f"added per 1-row request:                       {added_1 * 1e9:8.0f} ns "
        f"({added_1 / request:.2%} of the request)"
    )
    print(f"added per 100-row request:                     {added_100 * 1e9:8.0f} ns")


if __name__ == "__main__":
    main()
