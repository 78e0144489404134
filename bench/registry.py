"""Registry latency on the embedded store: promote, rollback and a cached load.

    python bench/registry.py [--repeats 200]

Prints the median (and p90) of each operation in milliseconds over ``--repeats`` calls on a
fresh SQLite store in a temporary folder. These machines are noisy: read the medians, and
compare runs on one machine only.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shipyard import Client, Settings
from shipyard.store import Store


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store = Store.from_settings(Settings(home=home, user="admin")).open()
        admin, alice = (
            Client(Settings(home=home, user=u), store=store).open() for u in ("admin", "alice")
        )
        admin.users.set_role("bob", "approver", actor="admin")
        bob = Client(Settings(home=home, user="bob"), store=store).open()
        for _ in range(2):
            alice.register(model, name="bench", X_train=X, y_train=y, onnx=False)
        bob.approve("bench", 1, reason="bench")
        bob.approve("bench", 2, reason="bench")
        alice.promote("bench", 1)
        toggle = iter(range(10**9))

        def promote() -> None:
            alice.promote("bench", 2 if next(toggle) % 2 == 0 else 1)

        results = {"promote": timed(promote, args.repeats)}
        # rollback after each promotion so there is always something to roll back
        rollbacks = []
        for _ in range(args.repeats):
            alice.promote("bench", 2)
            start = time.perf_counter()
            alice.rollback("bench")
            rollbacks.append((time.perf_counter() - start) * 1000)
        results["rollback"] = rollbacks
        alice.load("bench@production")  # first load verifies and unpickles
        results["load (cached)"] = timed(lambda: alice.load("bench@production"), args.repeats)
        fresh = [Client(Settings(home=home, user="x"), store=store).open() for _ in range(20)]
        results["load (first, verify + unpickle)"] = [
            t for c in fresh for t in timed(lambda c=c: c.load("bench@production"), 1)
        ]
        store.close()
    print(f"{'operation':34} {'median ms':>10} {'p90 ms':>8} {'n':>5}")
    for name, values in results.items():
        p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
        print(f"{name:34} {statistics.median(values):10.2f} {p90:8.2f} {len(values):5d}")


if __name__ == "__main__":
    main()
