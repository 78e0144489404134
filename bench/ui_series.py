"""The year of hourly monitoring results of the UI benchmark's store, written fast.

``monitoring_results`` holds one row per window, metric and feature, named as
``shipyard.monitoring.report_rows`` names them: per hourly window ``drift_share`` (feature
``*``), ``psi`` of each of the model's three features (flagged from 0.2) and its ``drift``
verdict (1.0 / 0.0, flagged alike), ``roc_auc`` (``*``), and on every ``perf_every``-th window
(those with enough labels) its interval ``roc_auc.ci_low`` / ``roc_auc.ci_high``: 8.5 rows per
window, 74.5M rows for 1,000 models over 365 days. Quality shares, ``rows`` and service rows
are left out to keep the table at that size.

SQLite: the raw ``sqlite3`` module, ``executemany`` in big transactions with
``synchronous=OFF``; PostgreSQL: ``COPY``. Both drop the table's two indexes first and build
them again at the end (the same names and columns as the migrations): a sort is much faster
than 48M random B-tree inserts.
"""

from __future__ import annotations

import io
import random
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

PSI_LIMIT = 0.2
DRIFT_SHARE_LIMIT = 0.5
COLUMNS = (
    "run_id",
    "model_name",
    "version",
    "source",
    "window_start",
    "window_end",
    "metric",
    "feature",
    "value",
    "threshold",
    "flagged",
    "rows",
    "seconds",
    "created_at",
)
#: Each feature's ``drift`` verdict (1.0 / 0.0, flagged alike), as ``report_rows`` writes it
#: beside the feature's test scores: made from the ``psi`` rows inside the database.
DRIFT_VERDICTS = (
    f"INSERT INTO monitoring_results ({', '.join(COLUMNS)}) "
    "SELECT run_id, model_name, version, source, window_start, window_end, 'drift', feature, "
    "CASE WHEN flagged THEN 1.0 ELSE 0.0 END, NULL, flagged, rows, seconds, created_at "
    "FROM monitoring_results WHERE metric = 'psi'"
)
INDEXES = {
    "ix_monitoring_results_series": (
        "(model_name, metric, feature, window_end, value, flagged, threshold, run_id)"
    ),
    "ix_monitoring_results_run_id": "(run_id)",
}


def drop_indexes(conn: Any) -> None:
    """Drop the series table's indexes (a sqlite3 or psycopg connection): bulk inserts go
    several times faster without them."""
    for index in INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {index}")


def create_indexes(conn: Any) -> None:
    """Build the series table's indexes again, with the migrations' names and columns."""
    for index, columns in INDEXES.items():
        conn.execute(f"CREATE INDEX {index} ON monitoring_results {columns}")


@dataclass(frozen=True)
class SeriesModel:
    """What the series of one model need: its features, traffic per hour, base ROC AUC, and
    which version was in production from which hour on (``changes``: (hour, version))."""

    name: str
    features: tuple[str, str, str]
    per_hour: float
    roc_auc: float
    changes: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Grid:
    """The hourly windows: ``start`` is the first window's start; ``hours`` windows."""

    start: datetime
    hours: int

    def stamps(self, fmt: Callable[[datetime], str]) -> tuple[list[str], list[str], list[str]]:
        """Window starts, ends and created_at (two minutes after the end), formatted."""
        starts = [self.start + timedelta(hours=h) for h in range(self.hours)]
        ends = [s + timedelta(hours=1) for s in starts]
        created = [e + timedelta(minutes=2) for e in ends]
        return [fmt(s) for s in starts], [fmt(e) for e in ends], [fmt(c) for c in created]

    def sources(self) -> list[str]:
        return [
            f"inputs:log:{s:%Y-%m-%dT%H:%M}..{s + timedelta(hours=1):%Y-%m-%dT%H:%M}"
            for s in (self.start + timedelta(hours=h) for h in range(self.hours))
        ]


def psi_series(rng: np.random.Generator, hours: int) -> np.ndarray:
    """Three features' PSI over ``hours``: small noise, and a few drift episodes (a ramp to
    0.25-0.6 over a day or more, then back)."""
    psi = rng.lognormal(np.log(0.03), 0.5, size=(hours, 3))
    for _ in range(rng.integers(0, 4)):
        feature = rng.integers(0, 3)
        length = int(rng.integers(24, 240))
        begin = int(rng.integers(0, max(1, hours - length)))
        peak = rng.uniform(0.25, 0.6)
        ramp = np.sin(np.linspace(0, np.pi, length)) * peak
        psi[begin : begin + length, feature] += ramp[: hours - begin]
    return psi


def model_rows(
    model: SeriesModel,
    grid: Grid,
    stamps: tuple[list[str], list[str], list[str]],
    sources: list[str],
    perf_every: int,
    rng: np.random.Generator,
    ids: random.Random,
) -> list[tuple[object, ...]]:
    """Every row of one model, as tuples in ``COLUMNS`` order (timestamps pre-formatted)."""
    hours = grid.hours
    psi = psi_series(rng, hours)
    flags = psi >= PSI_LIMIT
    share = flags.sum(axis=1) / 3.0
    drifting = share > 0
    auc = model.roc_auc - 0.01 + rng.normal(0, 0.008, hours) - 0.04 * drifting
    auc = np.clip(auc, 0.5, 0.999)
    n_rows = np.maximum(1, rng.poisson(model.per_hour, hours))
    seconds = rng.uniform(0.03, 0.4, hours)
    change_hours = np.array([h for h, _ in model.changes])
    change_versions = [v for _, v in model.changes]
    at = np.maximum(0, np.searchsorted(change_hours, np.arange(hours), side="right") - 1)
    version_l = [change_versions[a] for a in at.tolist()]
    starts, ends, created = stamps
    name = model.name
    f0, f1, f2 = model.features
    out: list[tuple[object, ...]] = []
    append = out.append
    psi_l, flags_l, share_l = psi.tolist(), flags.tolist(), share.tolist()
    auc_l, rows_l, sec_l = auc.tolist(), n_rows.tolist(), seconds.tolist()
    run_ids = [f"{ids.getrandbits(128):032x}" for _ in range(hours)]
    every = perf_every - 1
    for h in range(hours):
        r, v, so, st, en = run_ids[h], version_l[h], sources[h], starts[h], ends[h]
        n, sec, c = rows_l[h], sec_l[h], created[h]
        p, f = psi_l[h], flags_l[h]
        s = share_l[h]
        append(
            (
                r,
                name,
                v,
                so,
                st,
                en,
                "drift_share",
                "*",
                s,
                DRIFT_SHARE_LIMIT,
                s >= DRIFT_SHARE_LIMIT,
                n,
                sec,
                c,
            )
        )
        append((r, name, v, so, st, en, "psi", f0, p[0], PSI_LIMIT, f[0], n, sec, c))
        append((r, name, v, so, st, en, "psi", f1, p[1], PSI_LIMIT, f[1], n, sec, c))
        append((r, name, v, so, st, en, "psi", f2, p[2], PSI_LIMIT, f[2], n, sec, c))
        labelled = n // 3 or 1
        a = auc_l[h]
        append((r, name, v, so, st, en, "roc_auc", "*", a, None, False, labelled, sec, c))
        if h % perf_every == every:
            half = 0.6 / labelled**0.5
            low, high = max(0.0, a - half), min(1.0, a + half)
            append(
                (r, name, v, so, st, en, "roc_auc.ci_low", "*", low, None, False, labelled, sec, c)
            )
            append(
                (
                    r,
                    name,
                    v,
                    so,
                    st,
                    en,
                    "roc_auc.ci_high",
                    "*",
                    high,
                    None,
                    False,
                    labelled,
                    sec,
                    c,
                )
            )
    return out


def sqlite_stamp(value: datetime) -> str:
    """How SQLAlchemy's SQLite DateTime stores a UTC time."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def pg_stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S+00")


def write_sqlite(
    path: str,
    models: Sequence[SeriesModel],
    grid: Grid,
    perf_every: int,
    seed: int,
    advance: Callable[[int], None],
    health: dict[str, dict[str, object]],
) -> int:
    """Insert every model's rows into the SQLite file at ``path``; returns the row count."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1000000")  # 1 GB of page cache for the index builds
        conn.execute("PRAGMA temp_store=MEMORY")
        drop_indexes(conn)
        marks = ", ".join("?" * len(COLUMNS))
        sql = f"INSERT INTO monitoring_results ({', '.join(COLUMNS)}) VALUES ({marks})"
        total = 0
        conn.execute("BEGIN")
        for n, rows in enumerate(_all_rows(models, grid, perf_every, seed, sqlite_stamp, health)):
            conn.executemany(sql, rows)
            total += len(rows)
            advance(1)
            if n % 20 == 19:
                conn.execute("COMMIT")
                conn.execute("BEGIN")
        conn.execute("COMMIT")
        total += conn.execute(DRIFT_VERDICTS).rowcount
        create_indexes(conn)
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return total
    finally:
        conn.close()


def write_postgres(
    conninfo: str,
    models: Sequence[SeriesModel],
    grid: Grid,
    perf_every: int,
    seed: int,
    advance: Callable[[int], None],
    health: dict[str, dict[str, object]],
) -> int:
    """COPY every model's rows into PostgreSQL at ``conninfo``; returns the row count."""
    import psycopg

    total = 0
    with psycopg.connect(conninfo, autocommit=True) as conn:
        drop_indexes(conn)
        conn.execute("SET synchronous_commit = off")
        copy_sql = f"COPY monitoring_results ({', '.join(COLUMNS)}) FROM STDIN"
        batch: list[list[tuple[object, ...]]] = []

        def flush() -> None:
            with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
                for rows in batch:
                    copy.write(_tsv(rows))
            batch.clear()

        for rows in _all_rows(models, grid, perf_every, seed, pg_stamp, health):
            batch.append(rows)
            total += len(rows)
            advance(1)
            if len(batch) == 20:
                flush()
        if batch:
            flush()
        total += conn.execute(DRIFT_VERDICTS).rowcount
        conn.execute("SET maintenance_work_mem = '1GB'")
        create_indexes(conn)
        conn.execute("ANALYZE monitoring_results")
    return total


def add_drift_verdicts(db_url: str, sqlite_path: str | None) -> int:
    """Add the ``drift`` verdict rows to a store seeded without them (indexes dropped and
    built again around the insert); returns the rows added (0 when they are there)."""
    if sqlite_path is not None:
        conn = sqlite3.connect(sqlite_path, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA cache_size=-1000000")
            conn.execute("PRAGMA temp_store=MEMORY")
            if conn.execute(_HAS_VERDICTS).fetchone():
                return 0
            drop_indexes(conn)
            added = int(conn.execute(DRIFT_VERDICTS).rowcount)
            create_indexes(conn)
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return added
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        if conn.execute(_HAS_VERDICTS).fetchone():
            return 0
        drop_indexes(conn)
        added = conn.execute(DRIFT_VERDICTS).rowcount
        conn.execute("SET maintenance_work_mem = '1GB'")
        create_indexes(conn)
        conn.execute("ANALYZE monitoring_results")
        return int(added)


_HAS_VERDICTS = "SELECT 1 FROM monitoring_results WHERE metric = 'drift' LIMIT 1"


def _tsv(rows: list[tuple[object, ...]]) -> str:
    """COPY text format; no value here contains a tab, newline or backslash."""
    buf = io.StringIO()
    for r in rows:
        threshold = "\\N" if r[9] is None else repr(r[9])
        buf.write(
            f"{r[0]}\t{r[1]}\t{r[2]}\t{r[3]}\t{r[4]}\t{r[5]}\t{r[6]}\t{r[7]}\t{r[8]!r}\t"
            f"{threshold}\t{'t' if r[10] else 'f'}\t{r[11]}\t{r[12]!r}\t{r[13]}\n"
        )
    return buf.getvalue()


def _all_rows(
    models: Sequence[SeriesModel],
    grid: Grid,
    perf_every: int,
    seed: int,
    fmt: Callable[[datetime], str],
    health: dict[str, dict[str, object]],
) -> Iterator[list[tuple[object, ...]]]:
    stamps = grid.stamps(fmt)
    sources = grid.sources()
    for i, model in enumerate(models):
        rng = np.random.default_rng([seed, i])
        ids = random.Random(seed * 7919 + i)
        rows = model_rows(model, grid, stamps, sources, perf_every, rng, ids)
        health[model.name] = health_of(rows)
        yield rows


def health_of(rows: list[tuple[object, ...]]) -> dict[str, object]:
    """The newest window of one model's rows as ``model_health`` columns, so the catalogue
    agrees with the series (the interval is the newest one written)."""
    last_run = rows[-1][0]
    window = [r for r in rows[-10:] if r[0] == last_run]
    drifted = [str(r[7]) for r in window if r[6] == "psi" and r[10]]
    auc = next(r for r in window if r[6] == "roc_auc")
    bounds = {str(r[6]): r[8] for r in rows[-400:] if str(r[6]).startswith("roc_auc.ci_")}
    return {
        "version": window[0][2],
        "run_id": last_run,
        "rows": window[0][11],
        "features": 3,
        "drifted": drifted,
        "performance": {
            "roc_auc": {
                "value": auc[8],
                "lower": bounds.get("roc_auc.ci_low"),
                "upper": bounds.get("roc_auc.ci_high"),
                "flagged": False,
            }
        },
    }
