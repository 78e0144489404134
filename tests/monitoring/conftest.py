"""Generated data for the monitoring tests: ~20 mixed features and five injectable drifts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from engine_frames import edgy_frame

from shipyard.dataset import Profile, Schema, infer_schema, profile_frame

SMALL = ["red", "green", "blue"]
MEDIUM = ["basic", "plus", "pro", "team", "enterprise"]
MEDIUM_P = [0.4, 0.25, 0.15, 0.12, 0.08]
CITIES = [f"city_{i:02d}" for i in range(12)]
CODES = [f"code_{i:03d}" for i in range(200)]

#: The five injected drifts: feature -> what changes.
DRIFTS = {
    "income": "mean shift of 0.5 sigma",
    "score": "std x 1.75",
    "colour": "10% of rows take a new category",
    "balance": "missing share from 1% to 20%",
    "plan": "category frequencies change",
}


def make_frame(n: int, seed: int, *, drift: bool = False, shift: float = 0.5) -> pd.DataFrame:
    """``n`` rows of 20 features; with ``drift``, the five drifts of ``DRIFTS``."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 12_000, n)
    if drift:
        income += shift * 12_000
    score = rng.normal(600, 80, n)
    if drift:
        score = 600 + (score - 600) * 1.75
    balance = rng.lognormal(8, 1, n)
    balance[rng.random(n) < (0.2 if drift else 0.01)] = np.nan
    colour = rng.choice(SMALL, n, p=[0.5, 0.3, 0.2]).astype(object)
    if drift:
        colour[rng.random(n) < 0.1] = "purple"
    plan_p = [0.25, 0.25, 0.2, 0.15, 0.15] if drift else MEDIUM_P
    ratio = rng.normal(0.3, 0.05, n)
    ratio[rng.random(n) < 0.02] = np.nan
    city = rng.choice(CITIES, n, p=np.arange(12, 0, -1) / 78).astype(object)
    city[rng.random(n) < 0.03] = None
    zipf = 1 / np.arange(1, 201)
    return pd.DataFrame(
        {
            "income": income,
            "score": score,
            "balance": balance,
            "colour": colour,
            "plan": rng.choice(MEDIUM, n, p=plan_p),
            "temperature": rng.normal(15, 8, n),
            "weight": rng.normal(70, 12, n),
            "height": rng.normal(170, 10, n),
            "spend": rng.lognormal(3, 0.8, n),
            "duration": rng.lognormal(1, 1.2, n),
            "ratio": ratio,
            "visits": rng.poisson(3, n),
            "items": rng.poisson(12, n),
            "age": rng.integers(18, 91, n),
            "flag": rng.integers(0, 2, n),
            "city": city,
            "code": rng.choice(CODES, n, p=zipf / zipf.sum()),
            "active": rng.random(n) < 0.7,
            "channel": rng.choice(["web", "app", "store", "phone"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "segment": rng.choice(["a", "b"], n, p=[0.9, 0.1]),
        }
    )


@pytest.fixture(scope="session")
def mixed_frame() -> Callable[..., pd.DataFrame]:
    """The generator of ``make_frame``: ``mixed_frame(n, seed, drift=False, shift=0.5)``."""
    return make_frame


@pytest.fixture(scope="module")
def reference_frame(mixed_frame: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    """The engine equality tests' reference: ``edgy_frame`` without drift, its text numbers
    as numbers, float levels as strings and integral floats as integers."""
    frame = edgy_frame(mixed_frame, 20_000, 1, drift=False)
    frame["as_text"] = pd.to_numeric(frame["as_text"])
    frame["level"] = frame["level"].astype(str)
    frame["counted"] = frame["counted"].astype(np.int64)
    return frame


@pytest.fixture(scope="module")
def reference(reference_frame: pd.DataFrame) -> Profile:
    return profile_frame(reference_frame)


@pytest.fixture(scope="module")
def schema(reference_frame: pd.DataFrame) -> Schema:
    return infer_schema(reference_frame)
