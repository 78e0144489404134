"""Serving fixtures: a store with ``churn`` v1 (production) and v2 (or ``fraud``, a river
model), and an in-process client.

Requests go through ``httpx.ASGITransport`` with the app's lifespan run by hand (Starlette's
TestClient is deprecated with httpx); ``shipyard.serving.serve_in_thread`` runs a real
server on a thread for the tests where sockets matter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI

from gates_off import NO_GATES
from group_models import register_group_models
from kserve_venv import kserve_python  # noqa: F401 (a fixture for the KServe tests)
from shipyard import Client
from shipyard.packaging import PreparedArchive
from shipyard.registry import Groups, Registry
from shipyard.store import Store


@pytest.fixture
def rows(training_data) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """Five held-out rows, as the protocol tests send them."""
    return training_data[2].head(5).reset_index(drop=True)


@pytest.fixture
def expected(churn: Registry, rows: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Production's labels and probabilities for ``rows``, computed in process."""
    model = churn.load("churn@production")
    proba = model.predict_proba(rows)
    assert proba is not None
    return model.predict(rows).tolist(), proba


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def churn(store: Store, prepared: PreparedArchive, approver: Client) -> Registry:
    """``churn`` v1 and v2 by alice, both approved by bob; v1 is production."""
    registry = Registry(store, NO_GATES)
    for _ in range(2):
        registry.register(prepared, name="churn", actor="alice")
    for version in (1, 2):
        approver.approve("churn", version, reason="metrics ok")
    registry.promote("churn", 1, actor="alice")
    return registry


@pytest.fixture
def fraud(store: Store, approver: Client) -> Registry:
    """``fraud`` v1 (production): a river model that learned the stream before the drift."""
    from serving.fraud_stream import register_fraud  # river loads for these tests only

    return register_fraud(store, approver)


#: Two rows every member of the test groups reads.
GROUP_ROWS = [
    {"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"},
    {"age": 25, "income": 31_000.0, "tenure": 7.0, "plan": "basic"},
]


@pytest.fixture
def group_registry(store: Store, approver: Client, fitted_pipeline, training_data) -> Registry:  # type: ignore[no-untyped-def]
    """The group models (``group_models``) and three groups of them: ``retention`` (chain of
    churn -> value), ``consensus`` (mean of churn and churn_tree) and ``votes`` (their vote)."""
    registry = Registry(store, NO_GATES)
    register_group_models(registry, approver, fitted_pipeline, training_data)
    groups = Groups(store, registry)
    groups.create("retention", ["churn@production", "value@production"], "chain", actor="al")
    groups.create("consensus", ["churn@production", "churn_tree@production"], "mean", actor="alice")
    groups.create("votes", ["churn@production", "churn_tree@production"], "vote", actor="alice")
    return registry


@asynccontextmanager
async def http(app: FastAPI, **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to ``app`` in process, with the app's lifespan running."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://shipyard", headers=headers
        ) as client:
            yield client


@pytest.fixture(scope="module")
def oip_url(
    tmp_path_factory: pytest.TempPathFactory,
    prepared: PreparedArchive,
    training_data: tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series],
) -> Iterator[str]:
    """A real server (``serve_in_thread``) for the Open Inference Protocol client tests:
    ``churn`` and ``loans`` (nullable ``income``), see ``serving/oip_server.py``."""
    from serving.oip_server import nullable_archive, oip_server

    loans, _ = nullable_archive(training_data)
    with oip_server(tmp_path_factory.mktemp("oip"), {"churn": prepared, "loans": loans}) as (
        url,
        _,
    ):
        yield url


@pytest.fixture
def wait_for() -> Callable[..., object]:
    """``await wait_for(predicate, timeout)``: poll until true, else fail."""

    async def wait(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail("condition not met in time")
            await asyncio.sleep(0.01)

    return wait
