"""The serving-cost gate: a slower candidate fails every measurement; a failure caused by
noise is confirmed (measured again) before it stands. (An equal candidate passing is in
test_run.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from gate_inputs import inputs, labelled, pipeline, policy, register

from shipyard import Client
from shipyard.evaluation import _cost as cost_module
from shipyard.evaluation import run_gates

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

ONLY_COST = frozenset(
    {"accept", "metric", "slices", "explain", "schema", "data_checks", "onnx_parity"}
)


class Sleepy:
    """The champion's pipeline, 5 ms slower on every call (as a heavier model would be)."""

    classes_: np.ndarray

    def __init__(self, model: Any) -> None:
        self.model = model
        self.classes_ = model.classes_

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        time.sleep(0.005)
        return np.asarray(self.model.predict(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        time.sleep(0.005)
        return np.asarray(self.model.predict_proba(X))


def test_a_slower_candidate_fails_every_measurement(
    client_for: Callable[[str], Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    for constant, value in {"REQUESTS": 20, "WARMUP": 3, "ROUNDS": 1}.items():
        monkeypatch.setattr(cost_module, constant, value)  # 5 ms sleeps: keep the test short
    alice = client_for("alice")
    X, y = labelled(400, seed=1)
    model = pipeline().fit(X, y)
    v1 = register(alice, model, X, y, onnx=True)  # served by onnxruntime: < 1 ms a request
    v3 = register(alice, Sleepy(model), X, y)  # native, and 5 ms more
    Xf, yf = labelled(200, seed=2)
    rule = policy(accept="roc_auc >= 0.5")

    slow = run_gates(inputs(alice, Xf, yf, candidate=v3, champion=v1, model_policy=rule),
                     skip=ONLY_COST).gate("serving_cost")  # fmt: skip
    assert not slow.passed and slow.applicable
    assert len(slow.data["measurements"]) == 1 + cost_module.CONFIRMATIONS
    assert all(m["candidate"] > m["champion"] + 4 for m in slow.data["measurements"])
    assert f"slower in all {1 + cost_module.CONFIRMATIONS} measurements" in slow.detail


def _figures(candidate_ms: float, champion_ms: float) -> dict[str, Any]:
    def side(p99: float) -> dict[str, Any]:
        return {"runtime": "native", "runtime_reason": "", "p50_ms": p99 / 2, "p99_ms": p99,
                "p99_ms_rounds": [p99], "requests": 1, "batch_rows": 1,
                "rows_per_second": 1.0, "memory_bytes": 1, "archive_bytes": 1}  # fmt: skip

    return {"candidate": side(candidate_ms), "champion": side(champion_ms)}


@pytest.mark.parametrize(
    ("measured", "passed", "said"),
    [
        ([(9.0, 0.5), (0.6, 0.5)], True, "within it in measurement 2, the earlier slower"),
        ([(9.0, 0.5), (8.0, 0.4), (0.5, 0.5)], True, "within it in measurement 3"),
        ([(9.0, 0.5), (8.0, 0.4), (7.0, 0.5)], False, "slower in all 3 measurements"),
        ([(0.5, 0.5)], True, "medians of 1 round; within it in 1 of 1 round)"),
    ],
)
def test_a_latency_failure_is_measured_again_before_it_stands(
    client_for: Callable[[str], Client],
    monkeypatch: pytest.MonkeyPatch,
    measured: list[tuple[float, float]],
    passed: bool,
    said: str,
) -> None:
    alice = client_for("alice")
    X, y = labelled(200, seed=1)
    v1 = register(alice, pipeline().fit(X, y), X, y)
    queue = [_figures(c, p) for c, p in measured]
    monkeypatch.setattr(cost_module, "measure", lambda _inputs, _settings: queue.pop(0))
    gate = cost_module.serving_cost_gate(
        inputs(alice, X, y, candidate=v1, champion=v1), policy().gates
    )
    assert gate.passed is passed and said in gate.detail
    assert queue == []  # measured exactly as many times as the verdict needed
    assert [m["candidate"] for m in gate.data["measurements"]] == [c for c, _ in measured]


@pytest.mark.parametrize(
    ("candidate", "champion", "decided"),
    [
        ([0.5], [0.5], False),  # one round settles nothing
        ([0.5, 0.6], [0.5, 0.5], True),  # two within the allowance: passed, no third
        ([9.0, 8.0], [0.5, 0.5], True),  # two beyond it: failed, no third
        ([9.0, 0.5], [0.5, 0.5], False),  # split: a third round decides
        ([9.0, 0.5, 0.5], [0.5, 0.5, 0.5], True),
    ],
)
def test_a_measurement_stops_at_a_majority_of_paired_rounds(
    candidate: list[float], champion: list[float], decided: bool
) -> None:
    def round_of(p99: float) -> list[float]:  # 100 latencies whose 99th percentile is p99
        return [0.1] * 98 + [p99, p99]

    rounds = {"candidate": [round_of(c) for c in candidate]}
    rounds["champion"] = [round_of(h) for h in champion]
    settings = policy().gates
    assert cost_module._decided(rounds, settings) is decided
    assert cost_module._decided({"candidate": rounds["candidate"]}, settings)  # no champion
