"""ONNX and native runtimes agree within the recorded tolerance; micro-batching is correct."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from serving.conftest import http
from shipyard.errors import SchemaViolation
from shipyard.packaging import PreparedArchive
from shipyard.registry import Registry
from shipyard.serving import MicroBatcher, create_app
from shipyard.settings import ServeSettings
from shipyard.store import Store

pytestmark = pytest.mark.anyio


async def _served(store: Store, settings: ServeSettings, rows: pd.DataFrame) -> tuple[dict, dict]:  # type: ignore[type-arg]
    async with http(create_app(store, settings=settings)) as client:
        served = (await client.get("/models")).json()["models"][0]
        body = (
            await client.post("/models/churn/predict", json={"records": rows.to_dict("records")})
        ).json()
    return served, body


async def test_onnx_matches_native_within_recorded_tolerance(
    store: Store,
    churn: Registry,
    training_data,  # type: ignore[no-untyped-def]
) -> None:
    rows = training_data[2].reset_index(drop=True)  # the 150 evaluation rows
    onnx_info, onnx = await _served(store, ServeSettings(auth=False, runtime="onnx"), rows)
    native_info, native = await _served(store, ServeSettings(auth=False, runtime="native"), rows)
    auto_info, _ = await _served(store, ServeSettings(auth=False), rows)
    strict_info, _ = await _served(store, ServeSettings(auth=False, onnx_tolerance=0.0), rows)
    assert (onnx_info["runtime"], native_info["runtime"]) == ("onnx", "native")
    assert auto_info["runtime"] == "onnx"  # verified export within the default tolerance
    assert (
        strict_info["runtime"] == "native"
        and "more than the tolerance" in strict_info["runtime_reason"]
    )
    recorded = churn.load("churn", 1).manifest.onnx
    assert recorded is not None and recorded["error"] is None
    tolerance = max(recorded["max_abs_diff"], 1e-12) * 10
    np.testing.assert_allclose(onnx["probabilities"], native["probabilities"], atol=tolerance)
    assert onnx["predictions"] == native["predictions"]


async def test_onnx_runtime_without_export_is_503(
    store: Store,
    churn: Registry,
    fitted_pipeline,
    training_data,  # type: ignore[no-untyped-def]
) -> None:
    from shipyard.packaging import prepare_archive

    X, y, _, _ = training_data
    plain: PreparedArchive = prepare_archive(fitted_pipeline, X_train=X, y_train=y, onnx=False)
    churn.register(plain, name="fraud", actor="alice")
    churn.promote("fraud", 1, actor="alice", to="fast")
    settings = ServeSettings(auth=False, runtime="onnx", alias="fast")
    async with http(create_app(store, settings=settings)) as client:
        response = await client.post(
            "/models/fraud/predict", json={"records": X.head(1).to_dict("records")}
        )
    assert response.status_code == 503
    assert "no ONNX export" in response.json()["error"]


async def test_concurrent_requests_are_batched_with_per_request_results(
    store: Store,
    churn: Registry,
    training_data,  # type: ignore[no-untyped-def]
) -> None:
    rows = training_data[2].reset_index(drop=True)
    expected = churn.load("churn", 1).predict_proba(rows)
    assert expected is not None
    settings = ServeSettings(auth=False, runtime="native", batch_max_wait_ms=5)
    app = create_app(store, settings=settings)
    # 40 requests of 1 to 3 rows each, all in flight together.
    slices = [(i * 3, i * 3 + 1 + i % 3) for i in range(40)]
    async with http(app) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/models/churn/predict",
                    json={"records": rows.iloc[a:b].to_dict("records")},
                )
                for a, b in slices
            )
        )
        batcher = app.state.serving.pool.current("churn").batcher
    for (a, b), response in zip(slices, responses, strict=True):
        assert response.status_code == 200
        np.testing.assert_allclose(response.json()["probabilities"], expected[a:b], atol=1e-12)
    assert batcher.rows == sum(b - a for a, b in slices) + 0
    assert batcher.batches < len(slices) / 2  # they really shared model calls


async def test_a_failing_request_does_not_fail_its_batch() -> None:
    calls: list[int] = []

    def predict(frame: pd.DataFrame) -> tuple[np.ndarray, None]:
        calls.append(len(frame))
        if (frame["x"] < 0).any():
            raise SchemaViolation("negative", errors=[{"field": "x", "reason": "negative"}])
        return frame["x"].to_numpy() * 2, None

    batcher = MicroBatcher(predict, max_rows=64, max_wait_s=0.005)
    frames = [pd.DataFrame({"x": [i, i + 1]}) for i in range(-1, 9)]
    results = await asyncio.gather(*(batcher.submit(f) for f in frames), return_exceptions=True)
    await batcher.close()
    assert isinstance(results[0], SchemaViolation)
    for frame, result in zip(frames[1:], results[1:], strict=True):
        assert not isinstance(result, BaseException)
        assert result[0].tolist() == (frame["x"] * 2).tolist()
    assert max(calls) > 2  # a real batch was tried before the retries
    # a closed batcher still answers, alone
    late = await batcher.submit(pd.DataFrame({"x": [5]}))
    assert late[0].tolist() == [10]


def test_every_serve_setting_is_documented() -> None:
    from shipyard.settings import ServeSettings

    undocumented = [n for n, f in ServeSettings.model_fields.items() if not f.description]
    assert not undocumented, f"Add a description= to these ServeSettings fields: {undocumented}"


def test_small_native_calls_run_one_openmp_thread_and_restore_the_default() -> None:
    import threading

    import sklearn.ensemble  # noqa: F401 - loads scikit-learn's OpenMP runtime
    from threadpoolctl import threadpool_info

    from shipyard.serving._runtime import _openmp_controller, one_thread

    controller = _openmp_controller()
    if controller is None:
        pytest.skip("this process may use one core only: OpenMP starts one thread anyway")
    # the runtimes loaded now (scikit-learn's among them)
    limited = {lib.filepath for lib in controller.lib_controllers}
    assert any("sklearn" in path or "scikit_learn" in path for path in limited), limited

    def openmp_threads() -> set[int]:
        return {i["num_threads"] for i in threadpool_info() if i["filepath"] in limited}

    seen: dict[str, set[int]] = {}

    def in_worker() -> None:  # as in the batcher's thread
        seen["before"] = openmp_threads()
        with one_thread():
            seen["inside"] = openmp_threads()
        seen["after"] = openmp_threads()

    worker = threading.Thread(target=in_worker)
    worker.start()
    worker.join()
    assert seen["before"], "scikit-learn's OpenMP runtime is not loaded"
    assert seen["inside"] == {1}
    assert seen["after"] == seen["before"]
    assert openmp_threads() == seen["before"]  # other threads keep their own setting


def test_the_openmp_runtimes_are_looked_up_again_after_imports() -> None:
    """A model loaded later may bring a library with its own OpenMP runtime: after any
    import, the next small native call finds it; without one, the lookup is not redone."""
    import sys
    import types

    import sklearn.ensemble  # noqa: F401 - loads scikit-learn's OpenMP runtime

    from shipyard.serving._runtime import _openmp_controller

    first = _openmp_controller()
    if first is None:
        pytest.skip("this process may use one core only: OpenMP starts one thread anyway")
    assert _openmp_controller() is first  # remembered while nothing is imported
    name = "shipyard_test_newly_imported_model_library"
    sys.modules[name] = types.ModuleType(name)  # what an import does to sys.modules
    try:
        again = _openmp_controller()
        assert again is not first  # looked up anew ...
        assert {lib.filepath for lib in again.lib_controllers} == {
            lib.filepath for lib in first.lib_controllers
        }  # ... and it finds the same runtimes, as no library was actually loaded
    finally:
        del sys.modules[name]
