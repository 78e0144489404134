"""The UI benchmark's prediction log, written directly as the compactor's Parquet parts.

Layout, columns and types are those ``shipyard.predlog`` writes (``_parquet.partition_dir``,
``_decode.BASE_PREDICTION_SCHEMA``)::

    predictions/model=NAME/version=V/date=YYYY-MM-DD/part-<segment-id>.parquet
        prediction_id, ts (timestamp[us, UTC]), arm, status, reason, latency_ms,
        in__<feature>..., prediction, proba__0, proba__1
    feedback/model=NAME/date=YYYY-MM-DD/part-<segment-id>.parquet
        prediction_id, ts, label

Prediction ids are the server's (``serving._state.new_ids``): 11 hex digits of the ms clock,
40 random bits, a 5-digit row number, so they sort by time. Models get Zipf-shaped traffic
(the busiest ~7,000 times the quietest), uniform over the year; each row is answered by the
version in production at its time, or by the canary for 10% of a canaried model's traffic
since its canary started. The busiest models get labels for 30% of their rows a day later.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR
TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class LogModel:
    """One model's share of the log: its features (int, float, text), its production
    history ((hour, version)) and its canary ((hour, version) or None)."""

    name: str
    features: tuple[str, str, str]
    changes: tuple[tuple[int, int], ...]
    canary: tuple[int, int] | None
    feedback: bool


@dataclass
class LogStats:
    predictions: int = 0
    labels: int = 0
    files: int = 0
    bytes: int = 0


def zipf_counts(total: int, n: int) -> list[int]:
    """``total`` rows over ``n`` models, the k-th busiest getting a share ~ 1/k."""
    weights = 1.0 / np.arange(1, n + 1)
    counts = np.floor(weights / weights.sum() * total).astype(np.int64)
    counts[0] += total - counts.sum()
    return counts.tolist()


def write_log(
    root: Path,
    models: Sequence[LogModel],
    counts: Sequence[int],
    start: datetime,
    hours: int,
    seed: int,
    advance: Callable[[int], None],
    samples: list[str],
) -> LogStats:
    """Write every model's predictions (and labels) under ``root``; add a few ids per model
    to ``samples`` (for the trace timings)."""
    stats = LogStats()
    start_us = int(start.timestamp() * 1_000_000)
    for i, (model, count) in enumerate(zip(models, counts, strict=True)):
        rng = np.random.default_rng([seed, 1, i])
        if count:
            _write_model(root, model, count, start_us, hours, rng, stats, samples)
        advance(1)
    index_log(root)
    return stats


def index_log(root: Path) -> int:
    """Build the prediction-id index of every day of the log, as the compactor and gc keep it
    for a log written through ``PredictionLog`` (``trace`` reads one index file a day, then
    one part); returns the days indexed."""
    from datetime import date

    from shipyard.predlog import merge_id_index

    days = sorted({p.name.removeprefix("date=") for p in root.glob("predictions/*/*/date=*")})
    for day in days:
        merge_id_index(root, date.fromisoformat(day))
    return len(days)


def _write_model(
    root: Path,
    model: LogModel,
    count: int,
    start_us: int,
    hours: int,
    rng: np.random.Generator,
    stats: LogStats,
    samples: list[str],
) -> None:
    ts = np.sort(rng.integers(start_us, start_us + hours * US_PER_HOUR, count))
    hour = (ts - start_us) // US_PER_HOUR
    change_hours = np.array([h for h, _ in model.changes])
    change_versions = np.array([v for _, v in model.changes])
    version = change_versions[np.maximum(0, np.searchsorted(change_hours, hour, "right") - 1)]
    arm = np.full(count, "production", dtype=object)
    if model.canary is not None:
        canary_hour, canary_version = model.canary
        canaried = (hour >= canary_hour) & (rng.random(count) < 0.1)
        version = np.where(canaried, canary_version, version)
        arm[canaried] = "canary"
    ms = ts // 1000
    rand = rng.integers(0, 1 << 40, count)
    ids = [f"{m:011x}{r:010x}00000" for m, r in zip(ms.tolist(), rand.tolist(), strict=True)]
    proba1 = rng.beta(2, 5, count)
    table = pa.table(
        {
            "prediction_id": pa.array(ids, pa.string()),
            "ts": pa.array(ts, TS),
            "arm": pa.array(arm, pa.string()),
            "status": pa.array(np.full(count, "ok", dtype=object), pa.string()),
            "reason": pa.nulls(count, pa.string()),
            "latency_ms": pa.array(rng.gamma(2.0, 1.5, count)),
            f"in__{model.features[0]}": pa.array(rng.integers(18, 90, count)),
            f"in__{model.features[1]}": pa.array(np.round(rng.lognormal(8, 1, count), 2)),
            f"in__{model.features[2]}": pa.array(
                np.array(["basic", "plus", "pro", "team"], dtype=object)[rng.integers(0, 4, count)],
                pa.string(),
            ),
            "prediction": pa.array((proba1 >= 0.5).astype(np.int64)),
            "proba__0": pa.array(1.0 - proba1),
            "proba__1": pa.array(proba1),
        }
    )
    day = (ts - start_us + _day_offset(start_us)) // US_PER_DAY
    key = version.astype(np.int64) * 100_000 + day
    order = np.argsort(key, kind="stable")
    keys, first = np.unique(key[order], return_index=True)
    bounds = [*first.tolist(), count]
    for k, (lo, hi) in zip(keys.tolist(), itertools.pairwise(bounds), strict=True):
        rows = order[lo:hi]
        v, d = divmod(k, 100_000)
        folder = (
            root
            / "predictions"
            / f"model={model.name}"
            / f"version={v}"
            / f"date={_date(start_us, d)}"
        )
        _write_part(folder, table.take(pa.array(rows)), int(ts[rows[0]]), rng, stats)
    stats.predictions += count
    samples.extend(ids[j] for j in rng.integers(0, count, min(count, 5)).tolist())
    if model.feedback:
        _write_feedback(root, model, ids, ts, proba1, start_us, hours, rng, stats)


def _write_feedback(
    root: Path,
    model: LogModel,
    ids: list[str],
    ts: np.ndarray,
    proba1: np.ndarray,
    start_us: int,
    hours: int,
    rng: np.random.Generator,
    stats: LogStats,
) -> None:
    chosen = np.flatnonzero(rng.random(len(ids)) < 0.3)
    label_ts = np.minimum(ts[chosen] + US_PER_DAY, start_us + hours * US_PER_HOUR - 1)
    keep = np.argsort(label_ts, kind="stable")
    chosen, label_ts = chosen[keep], label_ts[keep]
    labels = (rng.random(len(chosen)) < proba1[chosen]).astype(np.int64)
    day = (label_ts - start_us + _day_offset(start_us)) // US_PER_DAY
    days, first = np.unique(day, return_index=True)
    bounds = [*first.tolist(), len(chosen)]
    id_array = pa.array(ids, pa.string())
    for d, lo, hi in zip(days.tolist(), bounds, bounds[1:], strict=False):
        table = pa.table(
            {
                "prediction_id": id_array.take(pa.array(chosen[lo:hi])),
                "ts": pa.array(label_ts[lo:hi], TS),
                "label": pa.array(labels[lo:hi]),
            }
        )
        folder = root / "feedback" / f"model={model.name}" / f"date={_date(start_us, d)}"
        _write_part(folder, table, int(label_ts[lo]), rng, stats)
        stats.labels += hi - lo


def _write_part(
    folder: Path, table: pa.Table, first_us: int, rng: np.random.Generator, stats: LogStats
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    segment_id = f"{first_us * 1000:016x}-{int(rng.integers(0, 1 << 48)):012x}"
    path = folder / f"part-{segment_id}.parquet"
    pq.write_table(table, path, compression="zstd")
    stats.files += 1
    stats.bytes += path.stat().st_size


def _day_offset(start_us: int) -> int:
    """Microseconds from the UTC midnight before ``start`` to ``start``."""
    return start_us % US_PER_DAY


def _date(start_us: int, day: int) -> str:
    midnight = (start_us - start_us % US_PER_DAY) // 1_000_000 + day * 86_400
    return datetime.fromtimestamp(midnight, UTC).strftime("%Y-%m-%d")
