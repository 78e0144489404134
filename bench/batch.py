"""Batch scoring vs a bare ``predict_proba``: 1M rows x 20 columns of Parquet.

The model is the serving benchmark's pipeline (14 numeric columns scaled, 6 categorical
one-hot encoded, HistGradientBoostingClassifier with 100 iterations), registered in a
throwaway Shipyard home. Both sides read the same Parquet file:

- bare: ``pd.read_parquet`` of the whole file, then the native ``model.predict_proba``;
- shipyard: ``score_file`` (chunks of 50,000 rows: schema check and coercion, ``predict``
  and ``predict_proba``, ids, and the scored Parquet file written).

Run: ``.venv/bin/python bench/batch.py [--rows 1000000] [--repeat 3]``. Prints the medians and
their ratio (target: at most 1.10).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

N_NUMERIC, N_CATEGORICAL = 14, 6


def make_frame(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {f"x{i}": rng.normal(0, 1, n) for i in range(N_NUMERIC)}
    for i in range(N_CATEGORICAL):
        data[f"c{i}"] = rng.choice([f"v{k}" for k in range(5 + i)], n)
    X = pd.DataFrame(data)
    logit = X["x0"] - 0.5 * X["x1"] + (X["c0"] == "v1") * 1.0
    y = pd.Series(np.where(logit + rng.normal(0, 1, n) > 0, "yes", "no"), name="y")
    return X, y


def make_pipeline() -> object:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [f"x{i}" for i in range(N_NUMERIC)]
    categorical = [f"c{i}" for i in range(N_CATEGORICAL)]
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ]
    )
    return Pipeline([("prep", prep), ("clf", HistGradientBoostingClassifier(max_iter=100))])


def timed(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        os.environ["SHIPYARD_HOME"] = home
        os.environ["SHIPYARD_USER"] = "bench"
        os.environ.pop("SHIPYARD_DB_URL", None)
        from shipyard import Client, Settings
        from shipyard.batch import score_file

        X_train, y_train = make_frame(20_000, seed=0)
        model = make_pipeline()
        model.fit(X_train, y_train)  # type: ignore[attr-defined]
        client = Client(Settings()).open()
        client.register(model, name="bench", X_train=X_train, y_train=y_train, onnx=False)
        loaded = client.load("bench:1")
        src, dst = Path(home) / "in.parquet", Path(home) / "out.parquet"
        make_frame(args.rows, seed=1)[0].to_parquet(src, index=False)
        native = loaded.model

        def bare() -> None:
            native.predict_proba(pd.read_parquet(src))

        def shipyard() -> None:
            score_file(loaded, src, dst, chunk_rows=args.chunk_rows)

        bare()  # warm up: imports, page cache
        bare_times, shipyard_times = [], []
        for _ in range(args.repeat):  # interleaved, so that load on the machine hits both
            bare_times.append(timed(bare))
            shipyard_times.append(timed(shipyard))
        client.close()

    b, s = statistics.median(bare_times), statistics.median(shipyard_times)
    print(f"rows={args.rows:,} columns={N_NUMERIC + N_CATEGORICAL} chunk_rows={args.chunk_rows:,}")
    print(f"bare read_parquet + predict_proba: median {b:.2f} s, runs {_rounded(bare_times)}")
    print(f"shipyard score_file:               median {s:.2f} s, runs {_rounded(shipyard_times)}")
    print(f"ratio score_file / bare: {s / b:.3f} (target <= 1.10)")


def _rounded(times: list[float]) -> list[float]:
    return [round(t, 2) for t in times]


if __name__ == "__main__":
    main()
