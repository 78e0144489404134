"""Label-free performance estimates (CBPE) vs realised performance under covariate shift.

Data: three features ``x ~ N(0, I)`` and a logistic ground truth that is the same in every
window (no concept drift). A model is trained on 10,000 rows; the reference (the archive's
eval rows: probabilities and labels) is 5,000 more. Then ``--windows`` windows of 5,000 rows
each move ``x1`` from 0 to ``--max-shift`` standard deviations. Labels are drawn from the
ground truth, so each window's realised accuracy is known. Two scenarios (``SCENARIOS``):

- ``boundary``: ``P(y=1 | x) = sigmoid(3 (x1 - 1.5) - x2 + 0.8 x2 x3)``; the windows move
  onto the decision boundary, beyond the reference's bulk, and the accuracy falls (0.92 to
  about 0.83). The case CBPE is for.
- ``interaction``: ``sigmoid(2 x1 - x2 + x1 x3 - 0.5)`` with ``x3`` shifted by half as much
  as ``x1``: the windows move where ``x1 x3`` matters, which a logistic regression cannot
  represent, so its calibration given its score differs from the reference's. A broken
  assumption, measured to show how much it costs.

Per window: ``CBPE().fit(reference probabilities, labels).estimate(window probabilities,
predictions=...)``, as a monitoring run does, against the realised accuracy (and ROC AUC) on
all of the window's labels. Per model and seed: the mean absolute error (MAE) and the worst
error of the estimate over the windows, the share of windows whose realised accuracy falls in
the estimate's 95% interval, the largest drop of the realised accuracy, and, for scale, the
MAE of assuming the reference's accuracy still holds (no estimate, no labels). Reported: the
median over ``--seeds`` seeds. Models: a logistic regression and a histogram
gradient-boosting classifier.

Run: ``.venv/bin/python bench/cbpe.py [--seeds 5] [--windows 10] [--max-shift 2.0]``.
No network, no peers: NannyML is not installed (its CBPE is the method followed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

# One OpenMP thread: gradient boosting's idle threads otherwise spin beside the timed code.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # after the thread setting

#: The two shifts measured, and what each shows.
SCENARIOS = {
    "boundary": "x1 moves onto the decision boundary (P(y|x) unchanged): the case CBPE is for",
    "interaction": "x1 and x3 move together into a region where x1*x3, which the logistic "
    "model cannot represent, matters: its calibration given the score changes, so an "
    "assumption breaks",
}
TRAIN_ROWS = 10_000
REFERENCE_ROWS = 5_000
WINDOW_ROWS = 5_000


def sample(
    rng: np.random.Generator, n: int, shift: float, scenario: str = "boundary"
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of ``scenario`` shifted by ``shift``, and labels from its ground truth."""
    x = rng.normal(size=(n, 3))
    x[:, 0] += shift
    if scenario == "boundary":
        logit = 3 * (x[:, 0] - 1.5) - x[:, 1] + 0.8 * x[:, 1] * x[:, 2]
    else:
        x[:, 2] += shift / 2
        logit = 2 * x[:, 0] - x[:, 1] + x[:, 0] * x[:, 2] - 0.5
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return x, y


def models() -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    return {
        "logistic": LogisticRegression(),
        "hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=100),
    }


def run_seed(scenario: str, name: str, seed: int, windows: int, max_shift: float) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    from shipyard.monitoring import CBPE

    rng = np.random.default_rng(seed)
    model = models()[name].fit(*sample(rng, TRAIN_ROWS, 0.0, scenario))
    x_ref, y_ref = sample(rng, REFERENCE_ROWS, 0.0, scenario)
    started = time.perf_counter()
    estimator = CBPE().fit(model.predict_proba(x_ref), y_ref, classes=[0, 1])
    fit_seconds = time.perf_counter() - started
    reference_accuracy = float((model.predict(x_ref) == y_ref).mean())
    rows, seconds = [], []
    for shift in np.linspace(0.0, max_shift, windows):
        x, y = sample(rng, WINDOW_ROWS, float(shift), scenario)
        proba, pred = model.predict_proba(x), model.predict(x)
        started = time.perf_counter()
        estimate = estimator.estimate(proba, predictions=pred)
        seconds.append(time.perf_counter() - started)
        accuracy = estimate.metric("accuracy")
        realised = float((pred == y).mean())
        rows.append(
            {
                "shift": float(shift),
                "realised": realised,
                "estimated": accuracy.value,
                "ci": (accuracy.ci_low, accuracy.ci_high),
                "auc_realised": float(roc_auc_score(y, proba[:, 1])),
                "auc_estimated": estimate.metric("roc_auc").value,
            }
        )
    errors = [abs(r["estimated"] - r["realised"]) for r in rows]
    auc_errors = [abs(r["auc_estimated"] - r["auc_realised"]) for r in rows]
    return {
        "calibration": estimator.calibration_[0].method,
        "mae": statistics.fmean(errors),
        "worst": max(errors),
        "covered": statistics.fmean(r["ci"][0] <= r["realised"] <= r["ci"][1] for r in rows),
        "auc_mae": statistics.fmean(auc_errors),
        "no_estimate_mae": statistics.fmean(abs(reference_accuracy - r["realised"]) for r in rows),
        "drop": rows[0]["realised"] - min(r["realised"] for r in rows),
        "fit_seconds": fit_seconds,
        "estimate_seconds": statistics.median(seconds),
        "windows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--max-shift", type=float, default=2.0)
    parser.add_argument("--json", help="also write every window's figures to this file")
    args = parser.parse_args()
    print(
        f"CBPE vs realised accuracy: {args.windows} windows of {WINDOW_ROWS:,} rows, x1 shifted "
        f"0..{args.max_shift:g} sd; reference {REFERENCE_ROWS:,} rows; median of {args.seeds} "
        "seeds"
    )
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for scenario in SCENARIOS:
        results[scenario] = {
            name: [
                run_seed(scenario, name, seed, args.windows, args.max_shift)
                for seed in range(args.seeds)
            ]
            for name in models()
        }
        print(f"\n{scenario}: {SCENARIOS[scenario]}")
        print(
            f"{'model':<24}{'drop':>7}{'MAE':>8}{'worst':>8}{'in 95% CI':>11}{'AUC MAE':>9}"
            f"{'no-estimate MAE':>17}{'isotonic':>10}{'fit s':>7}{'estimate s':>12}"
        )
        for name, runs in results[scenario].items():

            def median(key: str, runs: list[dict[str, Any]] = runs) -> float:
                return statistics.median(r[key] for r in runs)

            isotonic = sum(r["calibration"] == "isotonic" for r in runs)
            print(
                f"{name:<24}{median('drop'):>7.3f}{median('mae'):>8.4f}{median('worst'):>8.4f}"
                f"{median('covered'):>11.0%}{median('auc_mae'):>9.4f}"
                f"{median('no_estimate_mae'):>17.4f}{f'{isotonic}/{len(runs)}':>10}"
                f"{median('fit_seconds'):>7.2f}{median('estimate_seconds'):>12.3f}"
            )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=1)


if __name__ == "__main__":
    main()
