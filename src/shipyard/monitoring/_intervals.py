"""Confidence intervals: Wilson's score interval for a proportion, Newcombe's for the
difference of two, and a vectorised percentile bootstrap for any statistic that can be written
with per-row weights.

The bootstrap draws ``resamples`` resamples of ``n`` rows with replacement from a seeded
generator and represents each as a row of counts (how often each row was drawn), so a
statistic of all resamples at once is a matrix product (``weights @ per_row_values``), not a
Python loop. Resamples are processed in blocks of at most ``BLOCK`` counts, so memory stays
bounded (about 3 x 8 x ``BLOCK`` bytes) whatever ``n`` is.

>>> low, high = wilson_interval(8, 10)
>>> round(low, 4), round(high, 4)
(0.4902, 0.9433)
>>> values = np.arange(100.0)
>>> draws = bootstrap(100, lambda w: w @ values / 100, resamples=200, seed=0)
>>> draws.shape, bool(40 < np.percentile(draws, 2.5) < 49.5 < np.percentile(draws, 97.5) < 60)
((200,), True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np

from shipyard.errors import InvalidInput

#: Default number of bootstrap resamples.
RESAMPLES = 1000
#: Default seed of the bootstrap generator: the same data gives the same interval.
SEED = 0
#: Counts per block of resamples (a block holds ``BLOCK // n`` resamples, at least one).
BLOCK = 2_000_000


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise InvalidInput(f"The confidence level must be in (0, 1). Got {confidence} instead.")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval of a proportion ``successes / n`` (valid near 0 and 1, and for
    small ``n``, unlike the normal approximation)."""
    if n <= 0 or not 0 <= successes <= n:
        raise InvalidInput(
            f"wilson_interval needs 0 <= successes <= n and n > 0. Got {successes} of {n}."
        )
    z = _z(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(x1: int, n1: int, x2: int, n2: int, confidence: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``x1/n1 - x2/n2`` from two Wilson intervals.

    >>> low, high = newcombe_interval(10, 100, 0, 900, 0.99)
    >>> round(low, 3), round(high, 3)
    (0.046, 0.204)
    """
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, confidence)
    l2, u2 = wilson_interval(x2, n2, confidence)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def bootstrap(
    n: int,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    block: int = BLOCK,
) -> np.ndarray:
    """``statistic`` of ``resamples`` bootstrap resamples of ``n`` rows.

    ``statistic`` takes a ``(b, n)`` matrix of draw counts (one resample per row; all ones
    gives the plain estimate) and returns ``(b,)`` or ``(b, m)`` values. Returns the stacked
    values, one row per resample, in a deterministic order for a given ``seed``.
    """
    if n <= 0:
        raise InvalidInput("bootstrap needs at least one row.")
    if resamples < 1:
        raise InvalidInput(f"The number of resamples must be >= 1. Got {resamples} instead.")
    rng = np.random.default_rng(seed)
    per_block = max(1, block // n)
    parts = []
    done = 0
    while done < resamples:
        b = min(per_block, resamples - done)
        draws = rng.integers(0, n, size=(b, n))
        draws += np.arange(b)[:, None] * n  # row r's draws count into cells r*n ... r*n+n-1
        weights = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        parts.append(np.asarray(statistic(weights), dtype=np.float64))
        done += b
    return np.concatenate(parts)


def percentile_interval(
    draws: np.ndarray, confidence: float = 0.95
) -> tuple[float | None, float | None, int]:
    """The percentile interval of bootstrap ``draws`` (non-finite draws, e.g. resamples without
    a positive label, are left out) and how many draws it is based on."""
    _z(confidence)
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return None, None, 0
    alpha = (1 - confidence) / 2
    low, high = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high), int(finite.size)


def weighted_auc(positive: np.ndarray, score: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A bootstrap statistic: ROC AUC (Mann-Whitney, ties count half) of ``score`` for the
    boolean ``positive`` under each row of weights; NaN where a resample lacks a class.

    >>> auc = weighted_auc(np.array([False, True, False, True]), np.array([.1, .9, .4, .4]))
    >>> auc(np.ones((1, 4))).tolist(), auc(np.array([[1.0, 1.0, 0.0, 0.0]])).tolist()
    ([0.875], [1.0])
    """
    order = np.argsort(score, kind="mergesort")
    ordered = score[order]
    is_pos = positive[order].astype(np.float64)
    # Rows are compared in sorted order; rows of a tied score compare as half. The tied rows
    # (usually few) get a correction instead of grouping every row of every resample.
    new_value = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(new_value) - 1
    starts = np.flatnonzero(new_value)
    ends = np.r_[starts[1:], len(ordered)]  # one past each group's last row
    size = (ends - starts)[group]
    tied = np.flatnonzero(size > 1)
    first, last = starts[group[tied]], ends[group[tied]] - 1
    before, has_before = np.maximum(first - 1, 0), (first > 0).astype(np.float64)

    def statistic(weights: np.ndarray) -> np.ndarray:
        w = weights[:, order]
        pos = w * is_pos
        neg = w - pos
        below = np.cumsum(neg, axis=1)  # negatives up to and including each row
        wins = np.einsum("ij,ij->i", pos, below) - 0.5 * np.einsum("ij,ij->i", pos, neg)
        if len(tied):
            # the negatives before the group, and half of the group's own
            exact = 0.5 * (below[:, before] * has_before + below[:, last])
            as_ranked = below[:, tied] - 0.5 * neg[:, tied]
            wins += np.einsum("ij,ij->i", pos[:, tied], exact - as_ranked)
        pairs = pos.sum(axis=1) * neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(pairs > 0, wins / pairs, np.nan)

    return statistic
