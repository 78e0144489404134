"""Training-data checks: duplicates, constant columns and out-of-fold leakage scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.dataset import training_checks
from shipyard.errors import InvalidInput


def _frame(n: int = 2_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "id": [f"row{i}" for i in range(n)],
            "const": 7,
        }
    )
    y = np.where(X["x"] + rng.normal(0, 1, n) > 0, "yes", "no")
    return X, y


def test_a_leaked_column_is_caught_and_an_id_column_is_not() -> None:
    X, y = _frame()
    X["leaked"] = np.where(y == "yes", "Y", "N")  # a text copy of the label
    checks = training_checks(X, y, task="classification")
    assert checks["leakage_metric"] == "auc"
    assert checks["leakage"]["leaked"] == pytest.approx(1.0)
    # an identifier is unique per row: out of fold it predicts nothing
    assert checks["leakage"]["id"] < 0.6
    assert 0.65 < checks["leakage"]["x"] < 0.95  # informative, not leaked
    assert checks["leakage"]["plan"] < 0.6
    assert checks["constant_columns"] == ["const"] and "const" not in checks["leakage"]
    assert checks["duplicate_share"] == 0.0 and checks["n_rows"] == len(X)


def test_regression_scores_spearman_and_duplicates_count() -> None:
    X, _ = _frame(1_000)
    y = X["x"].to_numpy() * 3.0
    doubled = pd.concat([X, X], ignore_index=True)
    checks = training_checks(doubled, np.r_[y, y], task="regression")
    assert checks["leakage_metric"] == "spearman"
    assert checks["leakage"]["x"] == pytest.approx(1.0)
    assert checks["duplicate_share"] == pytest.approx(0.5)


def test_bad_input_is_one_sentence() -> None:
    X, y = _frame(50)
    with pytest.raises(InvalidInput, match="one label per row"):
        training_checks(X, y[:10], task="classification")
    with pytest.raises(InvalidInput, match="task must be one of"):
        training_checks(X, y, task="ranking")
