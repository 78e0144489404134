"""Checks of the training data, computed once at registration and kept in the archive
(``data_checks.json``): duplicate rows, constant columns, and how well each feature alone
predicts the target (label leakage). The validation gates judge them against the model's
policy; nothing here decides.

Leakage scores are out of fold, so that a column which merely identifies rows (an id, a
timestamp) does not look predictive: a categorical or text column is replaced by the target
rate of its value in the *other* folds (an unseen value gets the overall rate), then scored.

- classification: the ROC AUC of the feature alone, direction-free (``max(auc, 1 - auc)``);
  for more than two classes, the best one-vs-rest AUC;
- regression: the absolute Spearman correlation with the target.

"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shipyard.dataset._dtypes import check_frame, column_type
from shipyard.errors import InvalidInput

#: Leakage is scored on at most this many rows (a seeded sample beyond): enough to tell 0.99.
LEAKAGE_ROWS = 100_000
#: Folds of the out-of-fold target encoding.
FOLDS = 5
#: Version of the member's layout.
CHECKS_FORMAT = 1

_TASKS = ("classification", "regression")


def training_checks(X: pd.DataFrame, y: Any, *, task: str, seed: int = 0) -> dict[str, Any]:
    """The training-data checks of ``X`` (features) and ``y`` (labels), JSON-ready.

    Returns ``format``, ``n_rows``, ``duplicate_share`` (rows, label included, that repeat an
    earlier row), ``constant_columns``, ``leakage`` (feature -> score), ``leakage_metric``
    (``"auc"`` or ``"spearman"``) and ``leakage_rows`` (rows scored).

    >>> X = pd.DataFrame({"leak": [0, 1] * 50, "noise": [3, 1, 4, 1, 5] * 20})
    >>> checks = training_checks(X, np.array(["no", "yes"] * 50), task="classification")
    >>> checks["leakage"]["leak"], checks["duplicate_share"], checks["constant_columns"]
    (1.0, 0.92, [])
    """
    check_frame(X, "training_checks")
    if task not in _TASKS:
        raise InvalidInput(f"task must be one of {_TASKS}. Got {task!r} instead.")
    target = np.asarray(y)
    if target.ndim != 1 or len(target) != len(X):
        raise InvalidInput(
            f"training_checks needs one label per row: X has {len(X)} rows, y has shape "
            f"{target.shape}."
        )
    if len(X) == 0:
        raise InvalidInput("training_checks needs at least one row.")
    frame = X.reset_index(drop=True)
    with_label = frame.assign(__label__=target)
    hashes = pd.util.hash_pandas_object(with_label, index=False)
    duplicate_share = float(hashes.duplicated().mean())
    constant = [str(c) for c in frame.columns if _constant(frame[c])]

    rng = np.random.default_rng(seed)
    if len(frame) > LEAKAGE_ROWS:
        keep = np.sort(rng.choice(len(frame), LEAKAGE_ROWS, replace=False))
        frame, target = frame.iloc[keep].reset_index(drop=True), target[keep]
    folds = rng.integers(0, FOLDS, len(frame))
    if task == "classification":
        labels = pd.unique(target)
        # Binary: one AUC; multiclass: the best one-vs-rest AUC.
        targets = [
            (target == c).astype(float) for c in (labels[1:] if len(labels) == 2 else labels)
        ]
    else:
        targets = [pd.to_numeric(pd.Series(target), errors="coerce").to_numpy(dtype=float)]
    leakage: dict[str, float] = {}
    for name in frame.columns:
        if str(name) in constant:
            continue
        score = _leakage_score(frame[name], targets, folds, task)
        if score is not None:
            leakage[str(name)] = round(score, 6)
    return {
        "format": CHECKS_FORMAT,
        "n_rows": len(X),
        "duplicate_share": duplicate_share,
        "constant_columns": constant,
        "leakage": leakage,
        "leakage_metric": "auc" if task == "classification" else "spearman",
        "leakage_rows": len(frame),
    }


def _constant(column: pd.Series) -> bool:
    """One value in every row (or none in any); cheaper than counting distinct values."""
    missing = column.isna()
    if missing.iloc[0]:
        return bool(missing.all())
    return bool((column == column.iloc[0]).all()) and not bool(missing.any())


def _leakage_score(
    column: pd.Series, targets: list[np.ndarray], folds: np.ndarray, task: str
) -> float | None:
    """How well ``column`` alone predicts the target (``targets``: the regression target, or
    one 0/1 vector per class judged); None when it cannot be scored."""
    numeric = column_type(column) in ("integer", "float", "boolean")
    if task == "regression":
        y = targets[0]
        return _spearman(_as_numbers(column) if numeric else _encode(column, y, folds), y)
    best: float | None = None
    for positive in targets:
        x = _as_numbers(column) if numeric else _encode(column, positive, folds)
        auc = _auc(x, positive)
        if auc is not None:
            best = max(best or 0.0, auc, 1.0 - auc)
    return best


def _as_numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _encode(column: pd.Series, y: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Out-of-fold target mean of each row's value (missing as a value of its own)."""
    codes, _ = pd.factorize(column.astype(object), use_na_sentinel=False)
    n_codes = int(codes.max()) + 1
    ok = np.isfinite(y)
    out = np.empty(len(y))
    for fold in range(FOLDS):
        inside = folds == fold
        train = ~inside & ok
        prior = float(y[train].mean()) if train.any() else 0.0
        sums = np.bincount(codes[train], weights=y[train], minlength=n_codes)
        counts = np.bincount(codes[train], minlength=n_codes)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / np.maximum(counts, 1), prior)
        out[inside] = means[codes[inside]]
    return out


def _auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """Mann-Whitney AUC (ties count half); missing scores rank lowest."""
    score = np.where(np.isnan(score), -np.inf, score)
    n_pos = positive.sum()
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _rankdata(score)
    return float((ranks[positive == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank (pandas': importing scipy.stats costs
    more than the whole check)."""
    return np.asarray(pd.Series(values).rank(method="average"), dtype=float)


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return None
    rx, ry = _rankdata(x[ok]), _rankdata(y[ok])
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(abs(np.corrcoef(rx, ry)[0, 1]))
