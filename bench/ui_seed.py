"""Seeding the UI benchmark's store: a registry of many teams' models, a year of monitoring
and a prediction log, on SQLite or PostgreSQL (``python bench/ui.py seed``).

The store is a real Shipyard store (``Store.open()`` creates the schema through the
migrations); the registry's tables (models, versions, runs, aliases and their history,
approvals and requests, gate records, traffic policies, alerts, job runs, health) are written
with SQLAlchemy Core in bulk, the monitoring series with the raw driver (``ui_series``), the
log as Parquet parts (``ui_predlog``), and a few thousand audit events through
``append_event`` so the hash chain verifies. Everything is drawn from one seed: the same
arguments give the same data, timed relative to the hour the seed ran.
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import insert
from ui_predlog import LogModel, write_log
from ui_registry import PASSWORD, USERS, SeedConfig, World, draw
from ui_reviews import health_rows
from ui_series import Grid, write_postgres, write_sqlite

from shipyard.audit import append_event
from shipyard.auth import Passwords, Users
from shipyard.store import Store
from shipyard.store import tables as t

__all__ = ["PASSWORD", "SeedConfig", "seed"]

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def seed(config: SeedConfig) -> dict[str, Any]:
    """Build the whole store under ``config.out``; returns what was written and how long each
    step took (also saved as ``seed.json`` there, with sample ids for ``ui.py run``)."""
    _fresh(config)
    timings: dict[str, float] = {}
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    world = World(start=end - timedelta(days=config.days), hours=config.days * 24)
    with _timed(timings, "schema + users"):
        store = Store(config.db_url, str(config.out.absolute() / "artifacts"), creator="admin")
        store.open()
        users = Users(store)
        for name, role in USERS:
            users.set_role(name, role, actor="admin")
        passwords = Passwords(store)
        for name in ("admin", *(u for u, _ in USERS)):
            passwords.set(name, PASSWORD, actor="admin")
    counts: dict[str, int] = {}
    with _progress() as progress:
        with _timed(timings, "registry"):
            draw(world, config)
            task = progress.add_task("registry tables", total=len(world.rows))
            for table_name, rows in world.rows.items():
                _bulk(store, table_name, rows)
                counts[table_name] = len(rows)
                progress.advance(task)
        store.engine.dispose()  # the raw writers below take the database alone
        health: dict[str, dict[str, object]] = {}
        # The log is written by a second process meanwhile (it is CPU-bound Parquet writing;
        # the series are CPU-bound tuple building and the database's inserts).
        context = multiprocessing.get_context("spawn")
        done = context.Value("i", 0)
        results = context.Queue()
        log_args = (
            config.out / "predlog",
            world.log,
            world.counts,
            world.start,
            world.hours,
            config.seed,
            done,
            results,
        )
        writer = context.Process(target=_log_job, args=log_args)
        writer.start()
        log_task = progress.add_task("prediction log (models)", total=config.models)

        def show_log() -> None:
            progress.update(log_task, completed=done.value)

        with _timed(timings, "monitoring_results"):
            task = progress.add_task("monitoring results (models)", total=config.models)
            grid = Grid(world.start, world.hours)
            args = (world.series, grid, config.perf_every, config.seed)

            def advance(n: int) -> None:
                progress.advance(task, n)
                show_log()

            if config.db == "sqlite":
                counts["monitoring_results"] = write_sqlite(
                    str(config.out / "shipyard.db"), *args, advance, health
                )
            else:
                counts["monitoring_results"] = write_postgres(
                    config.pg_conninfo, *args, advance, health
                )
        with _timed(timings, "model_health"):
            _bulk(
                store,
                "model_health",
                health_rows(health, world.start + timedelta(hours=world.hours)),
            )
            counts["model_health"] = len(health)
        with _timed(timings, "prediction log (after the series)"):
            while True:
                show_log()
                try:
                    log_stats, samples, timings["prediction log"] = results.get(timeout=0.5)
                    break
                except queue.Empty:
                    if not writer.is_alive():
                        raise SystemExit("The prediction log writer died.") from None
            writer.join()
            show_log()
        with _timed(timings, "audit events"):
            counts["audit_events"] = _audit(store, world, progress)
    store.close()
    summary = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(config).items()},
        "db_url": config.db_url,
        "predlog": str((config.out / "predlog").absolute()),
        "artifacts": str((config.out / "artifacts").absolute()),
        "password": PASSWORD,
        "start": world.start.isoformat(),
        "end": end.isoformat(),
        "counts": counts,
        "log": log_stats,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "models": [m.name for m in world.series],
        "sample_prediction_ids": samples[:: max(1, len(samples) // 2000)],
    }
    (config.out / "seed.json").write_text(json.dumps(summary, indent=1))
    (config.out / "seeding").unlink()
    return summary


def _log_job(
    root: Path,
    models: list[LogModel],
    counts: list[int],
    start: datetime,
    hours: int,
    seed: int,
    done: Any,
    results: Any,
) -> None:
    """The prediction log writer's process: reports its stats, sample ids and seconds."""
    began = time.perf_counter()

    def advance(n: int) -> None:
        with done.get_lock():
            done.value += n

    samples: list[str] = []
    stats = write_log(root, models, counts, start, hours, seed, advance, samples)
    results.put((vars(stats), samples, time.perf_counter() - began))


def _fresh(config: SeedConfig) -> None:
    """An empty ``out`` (refusing a folder that is not an earlier seed) and, on PostgreSQL,
    a new database."""
    out = config.out
    if out.exists() and any(out.iterdir()):
        if not (out / "seed.json").exists() and not (out / "seeding").exists():
            raise SystemExit(f"{out} is not empty and holds no earlier seed; pick another --out.")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "seeding").write_text("")  # marks the folder as ours while it fills
    if config.db == "postgres":
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{config.pg_database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{config.pg_database}"')


TABLES = {
    cls.__tablename__: cls for cls in t.Base.__subclasses__() if hasattr(cls, "__tablename__")
}


def _bulk(store: Store, table_name: str, rows: list[dict[str, Any]]) -> None:
    table = TABLES[table_name].__table__
    with store.write() as session:
        for lo in range(0, len(rows), 20_000):
            session.execute(insert(table), rows[lo : lo + 20_000])


def _audit(store: Store, world: World, progress: Progress) -> int:
    """Audit events through ``append_event`` (so the chain verifies): each model's creation,
    and its last promotions with their approvals."""
    events: list[tuple[str, str, str, dict[str, Any]]] = []
    for row in world.rows["models"]:
        events.append(
            (row["owner"], "model.created", f"model:{row['name']}", {"team": row["team"]})
        )
    for name, version, _hour in world.promoted[-2 * len(world.rows["models"]) :]:
        events.append(("april", "version.approved", f"model:{name}/{version}", {"author": "sam"}))
        events.append(
            ("sam", "version.promoted", f"model:{name}/{version}", {"alias": "production"})
        )
    task = progress.add_task("audit events", total=len(events))
    for lo in range(0, len(events), 500):
        with store.write() as session:
            for actor, action, subject, details in events[lo : lo + 500]:
                append_event(session, actor=actor, action=action, subject=subject, details=details)
        progress.advance(task, len(events[lo : lo + 500]))
    return len(events)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )


def _advancer(progress: Progress, task: Any) -> Callable[[int], None]:
    return lambda n: progress.advance(task, n)


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start
