"""Per-token rate limits: 429 with Retry-After, one budget per token, held across replicas
through the real Redis (two ``shipyard serve`` processes), and still held per replica while
Redis is away; API tokens compared in constant time."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from security.conftest import Served
from server_process import wait_live
from serving.conftest import http
from shipyard.auth import MemoryRateLimiter, Rate, RedisRateLimiter, Tokens
from shipyard.errors import InvalidInput
from shipyard.serving import create_app, free_port
from shipyard.settings import ServeSettings

pytestmark = pytest.mark.anyio

GOOD = {"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}
BODY = {"records": [GOOD]}
REDIS_URL = os.environ.get("SHIPYARD_TEST_REDIS", "redis://127.0.0.1:6379/0")


def require_redis() -> None:
    """Skip without a Redis server (fail under ``CI=true``) or without its Python client."""
    problem = None
    try:
        import redis  # noqa: F401
    except ImportError:
        problem = "the redis client is not installed (pip install 'shipyard[redis]')"
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2):
            pass
    except OSError as exc:
        problem = f"no Redis server at 127.0.0.1:6379 ({exc})"
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(problem + " (CI=true: Redis is required)")
    pytest.skip(problem)


def test_rates_parse_and_refuse_nonsense() -> None:
    assert Rate.parse("100/s") == Rate(100, 1.0)
    assert Rate.parse("6000/min") == Rate(6000, 60.0)
    assert Rate.parse("500/10s") == Rate(500, 10.0)
    assert Rate.parse(" 2 / h ") == Rate(2, 3600.0)
    for bad in ("", "lots", "0/s", "10/0s", "10/fortnight", "-1/s", "10"):
        with pytest.raises(InvalidInput, match="reads like '100/s'"):
            Rate.parse(bad)


def test_gcra_allows_a_burst_then_the_steady_pace() -> None:
    limiter = MemoryRateLimiter(Rate(5, 1.0))  # a burst of 5, then one each 0.2 s
    assert [limiter.wait("k", now=10.0) for _ in range(5)] == [None] * 5
    assert limiter.wait("k", now=10.0) == pytest.approx(0.2)
    assert limiter.wait("other", now=10.0) is None  # every key has its own budget
    assert limiter.wait("k", now=10.2) is None
    assert limiter.wait("k", now=10.2) == pytest.approx(0.2)
    assert limiter.wait("k", now=12.0) is None  # after a pause, the burst is back
    assert [limiter.wait("k", now=12.0) for _ in range(4)] == [None] * 4
    assert limiter.wait("k", now=12.0) is not None


async def test_over_the_limit_is_429_with_retry_after_per_token(served: Served) -> None:
    settings = ServeSettings(rate_limit="3/min")
    scorer = {"Authorization": f"Bearer {served.scorer_token}"}
    admin = {"Authorization": f"Bearer {served.admin_token}"}
    async with http(create_app(served.store, settings=settings)) as client:
        for _ in range(3):
            ok = await client.post("/models/churn/predict", json=BODY, headers=scorer)
            assert ok.status_code == 200, ok.text
        over = await client.post("/models/churn/predict", json=BODY, headers=scorer)
        assert over.status_code == 429
        assert over.json()["code"] == "TooManyRequests"
        wait = int(over.headers["retry-after"])
        assert 1 <= wait <= 20 and over.json()["retry_after"] == wait
        assert "retry in" in over.json()["error"] and served.scorer_token not in over.text
        # the limit is per token: another token has its own budget; the metadata routes count
        assert (await client.post("/v2/models/churn/infer", headers=admin, json={})).status_code
        assert (await client.get("/v2/models/churn", headers=admin)).status_code == 200
        assert (await client.get("/v2/models/churn", headers=scorer)).status_code == 429
        # an unknown token is 401, never 429, and spends nobody's budget
        bad = await client.post(
            "/models/churn/predict", json=BODY, headers={"Authorization": "Bearer sy_nope"}
        )
        assert bad.status_code == 401
        # probes and scrapers are never limited
        assert (await client.get("/v2/health/ready")).status_code == 200


async def test_without_auth_every_caller_shares_one_budget(served: Served) -> None:
    settings = ServeSettings(auth=False, rate_limit="2/min")
    async with http(create_app(served.store, settings=settings)) as client:
        codes = [
            (await client.post("/invocations", json={"dataframe_records": [GOOD]})).status_code
            for _ in range(3)
        ]
    assert codes == [200, 200, 429]


def _grpc_infer_request() -> Any:
    """One row of ``GOOD`` as a gRPC ``ModelInferRequest`` for churn (typed contents)."""
    from tritonclient.grpc import service_pb2

    request = service_pb2.ModelInferRequest(model_name="churn")
    for name, value in GOOD.items():
        datatype, field = {str: ("BYTES", "bytes"), int: ("INT64", "int64")}.get(
            type(value), ("FP64", "fp64")
        )
        tensor = request.inputs.add(name=name, datatype=datatype, shape=[1])
        contents = getattr(tensor.contents, f"{field}_contents")
        contents.append(value.encode() if isinstance(value, str) else value)
    return request


def test_grpc_authenticates_and_spends_the_same_budget_per_token(served: Served) -> None:
    """Over gRPC a token is checked as over REST, and its budget is the one REST spends: over
    it, RESOURCE_EXHAUSTED with the sentence and the seconds to wait (``retry-after``)."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    from shipyard.serving import serve_in_thread

    port = free_port()
    settings = ServeSettings(rate_limit="3/min", grpc_port=port)
    scorer = (("authorization", f"Bearer {served.scorer_token}"),)
    admin = (("authorization", f"Bearer {served.admin_token}"),)
    request = _grpc_infer_request()
    with (
        serve_in_thread(create_app(served.store, settings=settings)) as url,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)

        def refusal(call: Any, message: Any, metadata: Any) -> grpc.RpcError:
            with pytest.raises(grpc.RpcError) as error:
                call.with_call(message, metadata=metadata)
            return error.value

        # no token, an unknown token: UNAUTHENTICATED as 401, spending nobody's budget
        assert refusal(stub.ModelInfer, request, ()).code() == grpc.StatusCode.UNAUTHENTICATED
        unknown = (("authorization", "Bearer sy_nope"),)
        bad = refusal(stub.ModelInfer, request, unknown)
        assert (
            bad.code() == grpc.StatusCode.UNAUTHENTICATED and "unknown or revoked" in bad.details()
        )
        # the scorer's 3 a minute: two over gRPC and one over REST, then refused on both
        for _ in range(2):
            answer, _ = stub.ModelInfer.with_call(request, metadata=scorer)
            assert answer.model_name == "churn"
        rest = httpx.post(
            f"{url}/models/churn/predict",
            json=BODY,
            headers={"Authorization": f"Bearer {served.scorer_token}"},
        )
        assert rest.status_code == 200, rest.text
        over = refusal(stub.ModelInfer, request, scorer)
        assert over.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailing = dict(over.trailing_metadata())
        wait = int(trailing["retry-after"])
        assert 1 <= wait <= 20 and trailing["shipyard-error"] == "TooManyRequests"
        assert f"retry in {wait} second" in over.details()
        assert served.scorer_token not in over.details()
        metadata = service_pb2.ModelMetadataRequest(name="churn")
        limited = refusal(stub.ModelMetadata, metadata, scorer)  # the metadata RPCs count
        assert limited.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        rest = httpx.post(
            f"{url}/models/churn/predict",
            json=BODY,
            headers={"Authorization": f"Bearer {served.scorer_token}"},
        )
        assert rest.status_code == 429
        # another token has its own budget; probes are never limited nor need a token
        assert stub.ModelMetadata(metadata, metadata=admin).name == "churn"
        assert stub.ServerLive(service_pb2.ServerLiveRequest()).live


def _serve(port: int, env: dict[str, str], err: Any) -> subprocess.Popen[bytes]:
    command = ["serve", "--port", str(port), "--no-log", "--rate-limit", "10/min"]
    command += ["--rate-limit-redis", REDIS_URL]
    return subprocess.Popen(
        [sys.executable, "-m", "shipyard", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )


@pytest.mark.slow
def test_the_limit_holds_across_two_server_processes_sharing_redis(
    served: Served, tmp_path: Path
) -> None:
    """Two replicas, one token, 10/min: 10 answered in all, whichever replica took them."""
    require_redis()
    env = {**os.environ, "SHIPYARD_HOME": str(served.home), "SHIPYARD_USER": "admin"}
    for key in ("SHIPYARD_DB_URL", "SHIPYARD_ARTIFACTS"):
        env.pop(key, None)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[2] / "src"), *sys.path])
    replicas = []
    errs = [tmp_path / f"replica{i}.err" for i in range(2)]
    with errs[0].open("wb") as err0, errs[1].open("wb") as err1:
        try:
            for err, path in ((err0, errs[0]), (err1, errs[1])):
                port = free_port()
                replicas.append((f"http://127.0.0.1:{port}", _serve(port, env, err), path))
            for url, process, path in replicas:
                wait_live(url, process, path, timeout=180, path="/v2/health/ready")
            # a fresh token: its budget in Redis is untouched by earlier runs
            token, _ = Tokens(served.store).create(
                role="scorer", name=f"rl-{uuid.uuid4().hex[:8]}", actor="admin"
            )
            headers = {"Authorization": f"Bearer {token}"}
            codes = []
            for n in range(16):
                url = replicas[n % 2][0]
                answer = httpx.post(f"{url}/models/churn/predict", json=BODY, headers=headers)
                codes.append(answer.status_code)
            assert codes.count(200) == 10 and codes.count(429) == 6, codes
        finally:
            for _, process, _ in replicas:
                process.send_signal(signal.SIGTERM)
                process.wait(15)
    for path in errs:  # and the token never reached the servers' logs
        assert token not in path.read_text()


async def test_redis_away_means_each_replica_counts_alone() -> None:
    """A Redis that does not answer is no outage: the limit is counted in memory meanwhile."""
    require_redis()
    port = free_port()  # nothing listens there
    limiter = RedisRateLimiter(Rate(2, 60.0), f"redis://127.0.0.1:{port}/0")
    try:
        waits = [await limiter.check("token:x") for _ in range(3)]
    finally:
        await limiter.close()
    assert waits[:2] == [None, None] and waits[2] is not None and waits[2] > 0


async def test_redis_limiter_shares_one_budget_between_clients() -> None:
    require_redis()
    key = f"token:{uuid.uuid4().hex}"
    a = RedisRateLimiter(Rate(4, 60.0), REDIS_URL)
    b = RedisRateLimiter(Rate(4, 60.0), REDIS_URL)
    try:
        waits = await asyncio.gather(*(lim.check(key) for lim in (a, b) * 3))
        assert sum(w is None for w in waits) == 4, waits
        refused = [w for w in waits if w is not None]
        assert all(10 < w <= 15 for w in refused), refused  # the next slot: 15 s apart
    finally:
        await a.close()
        await b.close()


def test_tokens_are_compared_in_constant_time(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored hash is checked with ``hmac.compare_digest`` (not ``==``)."""
    import hmac

    from shipyard.auth import Tokens, _tokens

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(_tokens.hmac, "compare_digest", spy)
    assert Tokens(served.store).verify(served.scorer_token) is not None
    assert calls and all(a == b for a, b in calls)
    assert Tokens(served.store).verify("sy_" + "x" * 43) is None
