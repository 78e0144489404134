"""Test data shared by the monitoring CLI and the scheduler's monitor job: churn-like frames
and a prediction log of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def churn_frame(n: int, seed: int) -> pd.DataFrame:
    """``n`` rows of age (normal), income (log-normal) and plan (three categories)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(45, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def log_predictions(root: Path, frame: pd.DataFrame, version: int = 1) -> list[str]:
    """Log every row of ``frame`` as an accepted churn prediction (ids ``p0``, ``p1``...)."""
    from shipyard.predlog import PredictionLog

    ids = [f"p{i}" for i in range(len(frame))]
    log = PredictionLog(root).open()
    log.append(
        {
            "prediction_id": pid,
            "model": "churn",
            "version": version,
            "arm": "production",
            "inputs": row,
            "prediction": 1,
            "proba": {"0": 0.3, "1": 0.7},
            "latency_ms": 1.0,
            "status": "ok",
        }
        for pid, row in zip(ids, frame.to_dict(orient="records"), strict=True)
    )
    log.close()
    return ids
