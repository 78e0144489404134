"""Traffic policies on a real uvicorn server: canary share, sticky keys, shadow, clear, bypass."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from gates_off import NO_GATES
from shipyard.predlog import Answers
from shipyard.registry import Registry, Traffic
from shipyard.serving import ARM_HEADER, VERSION_HEADER, create_app
from shipyard.serving import serve_in_thread as uvicorn_server
from shipyard.serving._routing import bucket
from shipyard.settings import ServeSettings
from shipyard.store import Store

pytestmark = pytest.mark.anyio
ROW = {"records": [{"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}]}


class ListSink:
    """A prediction sink keeping records in memory."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def append(self, records: list[dict[str, Any]]) -> None:
        self.records.extend(records)

    def append_answers(self, answers: Answers) -> None:
        self.records.extend(answers.records())

    def close(self) -> None:
        pass


def test_bucket_is_stable_across_processes() -> None:
    # Known values: BLAKE2b-64 of b"churn\0" + key, mod 10000 (never Python's hash()).
    assert bucket("churn", b"user-1") == bucket("churn", b"user-1")
    import hashlib

    d = hashlib.blake2b(b"churn\x00user-1", digest_size=8).digest()
    assert bucket("churn", b"user-1") == int.from_bytes(d, "big") % 10_000
    spread = Counter(bucket("churn", f"user-{i}".encode()) < 2_000 for i in range(5000))
    assert abs(spread[True] - 1000) < 4 * math.sqrt(5000 * 0.2 * 0.8)


async def _wait_arm(client: httpx.AsyncClient, arm: str, seconds: float = 1.5) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        r = await client.post("/models/churn/predict", json=ROW)
        if r.headers[ARM_HEADER] == arm:
            return
        assert asyncio.get_running_loop().time() < deadline, f"arm {arm} not seen in time"
        await asyncio.sleep(0.02)


async def test_canary_sticky_shadow_clear(store: Store, churn: Registry) -> None:
    sink = ListSink()
    app = create_app(
        store,
        settings=ServeSettings(auth=False, runtime="native", poll_interval_seconds=0.1),
        prediction_log=sink,
    )
    traffic = Traffic(store, NO_GATES)
    with uvicorn_server(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            r = await client.post("/models/churn/predict", json=ROW)
            assert r.headers[ARM_HEADER] == "production" and r.headers[VERSION_HEADER] == "1"

            await asyncio.to_thread(traffic.canary, "churn", 2, 20, actor="alice")
            await _wait_arm(client, "canary")
            n = 500
            answers = await asyncio.gather(
                *(client.post("/models/churn/predict", json=ROW) for _ in range(n))
            )
            assert all(a.status_code == 200 for a in answers)
            seen = Counter((a.headers[ARM_HEADER], a.headers[VERSION_HEADER]) for a in answers)
            assert set(seen) == {("production", "1"), ("canary", "2")}
            # 20% of 500 = 100, sd = sqrt(500 * .2 * .8) ~ 8.9: within 4 sd.
            assert abs(seen["canary", "2"] - 100) < 4 * math.sqrt(n * 0.2 * 0.8)

            # Explicit-version URLs bypass the policy.
            r = await client.post("/models/churn/versions/1/predict", json=ROW)
            assert r.headers[ARM_HEADER] == "explicit" and r.headers[VERSION_HEADER] == "1"

            # Sticky by header: one key, one version; keys spread over both.
            await asyncio.to_thread(
                traffic.canary, "churn", 2, 50, actor="alice", sticky="header:X-User"
            )
            await asyncio.sleep(0.5)
            per_key: dict[str, set[str]] = {}
            for i in range(40):
                for _ in range(3):
                    r = await client.post(
                        "/models/churn/predict", json=ROW, headers={"X-User": f"u{i}"}
                    )
                    per_key.setdefault(f"u{i}", set()).add(r.headers[VERSION_HEADER])
            assert all(len(v) == 1 for v in per_key.values())
            assert {next(iter(v)) for v in per_key.values()} == {"1", "2"}

            # Shadow: logged with arm "shadow", never returned; under the answered ids, so
            # the labels sent for them join to the shadow version too.
            await asyncio.to_thread(traffic.clear, "churn", actor="alice")
            await asyncio.to_thread(traffic.shadow, "churn", 2, actor="alice")
            await asyncio.sleep(0.5)
            sink.records.clear()
            answers = [await client.post("/models/churn/predict", json=ROW) for _ in range(20)]
            assert {a.headers[VERSION_HEADER] for a in answers} == {"1"}
            await asyncio.sleep(0.3)
            shadows = [r for r in sink.records if r["arm"] == "shadow"]
            assert len(shadows) == 20 and {r["version"] for r in shadows} == {2}
            served = {pid for a in answers for pid in a.json()["prediction_ids"]}
            assert served == {r["prediction_id"] for r in shadows}
            answered = [r for r in sink.records if r["arm"] != "shadow"]
            assert {r["version"] for r in answered} == {1}

            # Clear: everything goes to production again.
            await asyncio.to_thread(traffic.clear, "churn", actor="alice")
            await asyncio.sleep(0.5)
            answers = [await client.post("/models/churn/predict", json=ROW) for _ in range(30)]
            assert {a.headers[ARM_HEADER] for a in answers} == {"production"}


async def test_policy_switch_under_load_fails_nothing(store: Store, churn: Registry) -> None:
    app = create_app(store, settings=ServeSettings(auth=False, runtime="native"))
    traffic = Traffic(store, NO_GATES)
    log: list[tuple[float, int, str]] = []  # (request start, status, arm)
    stop = asyncio.Event()

    async def hammer(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            started = time.monotonic()
            r = await client.post("/models/churn/predict", json=ROW)
            log.append((started, r.status_code, r.headers.get(ARM_HEADER, "")))

    async def seen_within(arm: str, since: float, seconds: float) -> None:
        """A request the load sent after ``since`` was answered by ``arm`` within ``seconds``
        (the load's own requests: a probe would queue behind them and measure the queue)."""
        while not any(s >= since and a == arm for s, _, a in log[-40:]):
            assert time.monotonic() - since < seconds, f"arm {arm} not seen within {seconds} s"
            await asyncio.sleep(0.01)

    with uvicorn_server(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            # v2 loaded once first: the 1 s bound is the switch, not unpickling a model on a
            # loaded 2-core machine
            warm = await client.post("/models/churn/versions/2/predict", json=ROW)
            assert warm.status_code == 200
            workers = [asyncio.create_task(hammer(client)) for _ in range(8)]
            try:
                await asyncio.sleep(0.3)
                await asyncio.to_thread(traffic.split, "churn", {1: 50, 2: 50}, actor="alice")
                await seen_within("split:2", time.monotonic(), seconds=1.0)
                await asyncio.to_thread(traffic.clear, "churn", actor="alice")
                cleared = time.monotonic()
                await asyncio.sleep(2.5)
            finally:  # the workers end (and their connections close) even if a check fails
                stop.set()
                await asyncio.gather(*workers)
    assert len(log) > 50
    assert {status for _, status, _ in log} == {200}
    assert {"production", "split:1", "split:2"} <= {a for _, _, a in log}
    # within a few polls (0.5 s each; two seconds on a loaded 2-core machine running the suite
    # on two processes) of the clear, production answers everything again
    assert {a for s, _, a in log if s >= cleared + 2.0} == {"production"}


def test_field_key_is_first_row_value_normalised() -> None:
    import pandas as pd

    from shipyard.registry import Arm, Policy
    from shipyard.serving._routing import Route, key_of

    policy = Policy(
        1,
        "churn",
        "canary",
        (Arm(None, 50), Arm(None, 50)),
        None,
        "field:customer",
        None,
        "alice",
        "",
    )  # type: ignore[arg-type]
    route = Route.build(policy, {}, "production")
    raw = pd.DataFrame({"customer": [42.0, 7.0], "age": [1, 2]})
    assert route.key({}, raw) == b"42" == key_of(42) == key_of("42")
    assert route.key({}, raw.drop(columns="customer")) is None  # missing field: random
    assert key_of(float("nan")) is None
    assert [a.upper for a in route.arms] == [5000, 10_000]


async def test_failing_shadow_never_breaks_answers(
    store: Store, churn: Registry, training_data, approver
) -> None:  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression

    from shipyard.packaging import prepare_archive

    X, y, _, _ = training_data
    other = X[["income", "tenure"]].rename(columns={"income": "salary"})
    model = LogisticRegression().fit(other, y)  # wants 'salary': every request fails on it
    churn.register(
        prepare_archive(model, X_train=other, y_train=y, onnx=False), name="churn", actor="alice"
    )
    sink = ListSink()
    app = create_app(
        store,
        settings=ServeSettings(auth=False, runtime="native", poll_interval_seconds=0.1),
        prediction_log=sink,
    )
    with uvicorn_server(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            await asyncio.to_thread(Traffic(store, NO_GATES).shadow, "churn", 3, actor="alice")
            await asyncio.sleep(0.6)
            answers = [await client.post("/models/churn/predict", json=ROW) for _ in range(10)]
            await asyncio.sleep(0.3)
            mirror = app.state.serving.pool.mirror
    assert {a.status_code for a in answers} == {200}
    assert {a.headers[VERSION_HEADER] for a in answers} == {"1"}
    assert mirror.failed == 10
    assert not [r for r in sink.records if r["arm"] == "shadow"]
