"""Calibration of a classifier's probabilities on labelled reference rows, for CBPE.

``ReferenceScores`` holds one class's reference scores and outcomes (one versus rest), sorted
once, so isotonic regression can be refitted on any row weights (the folds of the check, the
bootstrap resamples of the interval) in one pass of the pool-adjacent-violators algorithm.
``check_calibration`` decides whether a class needs it: isotonic regression is used when,
fitted out of fold, it lowers the Brier score of the raw probabilities (a proper scoring
rule; the binned expected calibration error, also reported, drops under an isotonic fit even
on calibrated probabilities, which it would then only make noisier).

>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(size=5_000)
>>> y = rng.uniform(size=5_000) < p
>>> calibrated, _ = check_calibration(ReferenceScores(p, y), "1")
>>> sharpened, curve = check_calibration(ReferenceScores(p**4 / (p**4 + (1 - p) ** 4), y), "1")
>>> calibrated.method, sharpened.method, curve is not None
('none', 'isotonic', True)
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict

Mode = Literal["auto", "isotonic", "none"]


class ClassCalibration(BaseModel):
    """The calibration check of one class's probabilities (one versus rest) on the reference.

    ``brier_before``/``ece_before``: the raw probabilities' Brier score and expected
    calibration error; ``*_after``: those of isotonic regression fitted out of fold (None when
    not checked; ``reason`` says why). ``method`` is what the estimate uses.
    """

    model_config = ConfigDict(frozen=True)

    label: str
    method: Literal["isotonic", "none"]
    brier_before: float
    brier_after: float | None
    ece_before: float
    ece_after: float | None
    reason: str


class Curve(NamedTuple):
    """A fitted isotonic calibration map: linear between its points, flat beyond them (as
    scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``)."""

    x: np.ndarray
    y: np.ndarray

    def predict(self, p: np.ndarray) -> np.ndarray:
        """The calibrated probabilities of scores ``p``."""
        return np.interp(p, self.x, self.y)


class ReferenceScores:
    """One class's reference scores ``p`` and outcomes ``y``, sorted and grouped by distinct
    score once, so that refitting on other row weights is one pass without sorting again."""

    def __init__(self, p: np.ndarray, y: np.ndarray) -> None:
        self.p, self.y = p, np.asarray(y, dtype=float)
        self.order = np.argsort(p, kind="mergesort")
        ordered = p[self.order]
        new = np.r_[True, ordered[1:] != ordered[:-1]]
        self.group = np.cumsum(new) - 1
        self.x = ordered[new]
        self.y_sorted = self.y[self.order]

    def fit(self, weights: np.ndarray | None = None) -> Curve:
        """Isotonic regression of ``y`` on ``p`` with these weights of the rows in ascending
        order of ``p`` (``p[order]``; default: ones). Resampling rows in that order is
        resampling rows, so a bootstrap draws its counts here directly."""
        from sklearn.isotonic import isotonic_regression  # on first use: drift never needs it

        w = np.ones(len(self.p)) if weights is None else weights
        if len(self.x) == len(self.p):  # distinct scores: one row per point
            total, hits = w, w * self.y_sorted
        else:
            total = np.bincount(self.group, weights=w, minlength=len(self.x))
            hits = np.bincount(self.group, weights=w * self.y_sorted, minlength=len(self.x))
        keep = total > 0
        fitted = isotonic_regression(
            hits[keep] / total[keep], sample_weight=total[keep], y_min=0.0, y_max=1.0
        )
        return Curve(self.x[keep], np.asarray(fitted, dtype=float))

    def out_of_fold(self, folds: int, seed: int) -> np.ndarray:
        """Each row's score calibrated by isotonic regression fitted on the other folds (a
        fold whose other rows lack an outcome keeps its scores)."""
        rng = np.random.default_rng(seed)
        out = self.p.copy()
        for fold in np.array_split(rng.permutation(len(self.p)), min(folds, len(self.p))):
            rest = np.ones(len(self.p))
            rest[fold] = 0.0
            if 0 < self.y @ rest < rest.sum():
                out[fold] = self.fit(rest[self.order]).predict(self.p[fold])
        return out


def check_calibration(
    reference: ReferenceScores,
    label: str,
    *,
    mode: Mode = "auto",
    bins: int = 10,
    folds: int = 5,
    seed: int = 0,
) -> tuple[ClassCalibration, Curve | None]:
    """The check of one class (``label``) and the isotonic curve to use, if any (``mode``
    ``"isotonic"`` uses it whatever the check says, ``"none"`` never)."""
    p, y = reference.p, reference.y
    before = (brier(p, y), ece(p, y, bins))
    if mode == "none":
        return _checked(label, False, "calibration turned off", before), None
    if not y.any():
        return _checked(label, False, "no reference row of this class: kept", before), None
    oof = reference.out_of_fold(folds, seed)
    after = (brier(oof, y), ece(oof, y, bins))
    if after[0] < before[0]:
        use, reason = True, "isotonic regression lowers the Brier score out of fold"
    elif mode == "isotonic":
        use, reason = True, "isotonic regression asked for"
    else:
        use, reason = False, "calibrated: isotonic regression does not lower the Brier score"
    return _checked(label, use, reason, before, after), reference.fit() if use else None


def brier(p: np.ndarray, y: np.ndarray) -> float:
    """The Brier score: the mean squared difference of probability and outcome."""
    return float(np.mean((p - y) ** 2))


def ece(p: np.ndarray, y: np.ndarray, bins: int) -> float:
    """Expected calibration error over ``bins`` equal-count bins of ``p``."""
    order = np.argsort(p, kind="mergesort")
    total = 0.0
    for part in np.array_split(order, min(bins, len(p))):
        total += len(part) * abs(float(p[part].mean()) - float(y[part].mean()))
    return total / len(p)


def _checked(
    label: str,
    use: bool,
    reason: str,
    before: tuple[float, float],
    after: tuple[float, float] | None = None,
) -> ClassCalibration:
    return ClassCalibration(
        label=label,
        method="isotonic" if use else "none",
        brier_before=before[0],
        brier_after=None if after is None else after[0],
        ece_before=before[1],
        ece_after=None if after is None else after[1],
        reason=reason,
    )
