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
import random
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import insert
from ui_predlog import LogModel, write_log, zipf_counts
from ui_series import Grid, SeriesModel, write_postgres, write_sqlite

from shipyard.audit import append_event
from shipyard.auth import Passwords, Users
from shipyard.store import Store
from shipyard.store import tables as t

PASSWORD = "bench-ui-password"
#: Users besides the store's creator ``admin``: (name, role).
USERS = (
    ("april", "approver"),
    ("arno", "approver"),
    ("sam", "scientist"),
    ("sara", "scientist"),
    ("vera", "viewer"),
)
SCIENTISTS = ("sam", "sara", "lee", "maya", "omar", "ines")
APPROVERS = ("april", "arno")
TEAMS = (
    "risk",
    "fraud",
    "growth",
    "pricing",
    "churn",
    "support",
    "ads",
    "search",
    "supply",
    "credit",
    "claims",
    "hr",
)
WORDS = (
    "default",
    "uplift",
    "propensity",
    "lifetime",
    "anomaly",
    "ranking",
    "forecast",
    "segment",
    "attrition",
    "approval",
)
INT_FEATURES = ("age", "tenure_months", "visits_30d", "num_products")
FLOAT_FEATURES = ("income", "balance", "spend_30d", "score")
TEXT_FEATURES = ("plan", "region", "channel", "segment")
#: One model in this many is served online and logs predictions (the busiest 20 get labels).
SERVE_EVERY = 5
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@dataclass(frozen=True)
class SeedConfig:
    db: str  # sqlite | postgres
    out: Path
    models: int = 1000
    versions: int = 20
    days: int = 365
    predictions: int = 10_000_000
    perf_every: int = 4
    seed: int = 12
    pg_database: str = "shipyard_ui_bench"

    @property
    def db_url(self) -> str:
        if self.db == "sqlite":
            return f"sqlite:///{self.out.absolute() / 'shipyard.db'}"
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.pg_database}"

    @property
    def pg_conninfo(self) -> str:
        return f"host=127.0.0.1 port=5432 user=postgres dbname={self.pg_database}"


@dataclass
class World:
    """The drawn registry: per model its versions' creation hours, production history
    (hour, version, action), staging version and canary."""

    start: datetime
    hours: int
    series: list[SeriesModel] = field(default_factory=list)
    log: list[LogModel] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    promoted: list[tuple[str, int, int]] = field(default_factory=list)  # name, version, hour
    counts: list[int] = field(default_factory=list)  # logged predictions per model


def log_counts(config: SeedConfig) -> list[int]:
    """Logged predictions per model: one model in five is served online (the rest score
    batches), the k-th busiest served model getting a share ~ 1/k."""
    served = zipf_counts(config.predictions, (config.models + SERVE_EVERY - 1) // SERVE_EVERY)
    return [served[i // SERVE_EVERY] if i % SERVE_EVERY == 0 else 0 for i in range(config.models)]


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
            _draw(world, config)
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
            _bulk(store, "model_health", _health_rows(health, world))
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


def _draw(world: World, config: SeedConfig) -> None:
    """Draw every registry row (no I/O)."""
    rng = random.Random(config.seed)
    hours = world.hours
    rows: dict[str, list[dict[str, Any]]] = {
        name: []
        for name in (
            "models",
            "runs",
            "datasets",
            "run_metrics",
            "model_versions",
            "aliases",
            "alias_changes",
            "approvals",
            "approval_requests",
            "gate_records",
            "traffic_policies",
            "alerts",
            "risks",
            "job_runs",
        )
    }
    world.rows = rows

    def at(hour: float) -> datetime:
        return world.start + timedelta(hours=hour)

    for i in range(config.models):
        team = TEAMS[i % len(TEAMS)]
        name = f"{team}-{WORDS[(i // len(TEAMS)) % len(WORDS)]}-{i:04d}"
        owner = rng.choice(SCIENTISTS)
        features = (rng.choice(INT_FEATURES), rng.choice(FLOAT_FEATURES), rng.choice(TEXT_FEATURES))
        rows["models"].append(
            {
                "name": name,
                "description": f"{WORDS[i % len(WORDS)].title()} model of the {team} team.",
                "tags": {"domain": team, "tier": rng.choice(["1", "2", "3"])},
                "created_at": at(-24 * 90 - rng.random() * 24 * 30),
                "created_by": owner,
                "objective": f"Rank {team} cases so the top decile holds most positives.",
                "accept": "roc_auc >= 0.75",
                "owner": owner,
                "team": team,
            }
        )
        created = sorted(rng.uniform(-24 * 60, hours - 48) for _ in range(config.versions))
        base_auc = rng.uniform(0.76, 0.9)
        aucs = []
        for v, hour in enumerate(created, start=1):
            auc = min(0.99, base_auc + rng.gauss(0, 0.01) + 0.002 * v)
            aucs.append(auc)
            author = rng.choice(SCIENTISTS)
            run_id = f"{rng.getrandbits(128):032x}"
            _run_rows(rows, rng, name, run_id, author, at(hour), auc)
            rows["model_versions"].append(
                {
                    "model_name": name,
                    "version": v,
                    "author": author,
                    "created_at": at(hour),
                    "run_id": run_id,
                    "flavor": "sklearn",
                    "task": "classification",
                    "archive_key": f"models/{name}/{v}/model.shipyard",
                    "digest": f"sha256:{rng.getrandbits(256):064x}",
                    "size": rng.randint(40_000, 9_000_000),
                    "metrics": {
                        "roc_auc": round(auc, 4),
                        "accuracy": round(auc - 0.07, 4),
                        "f1": round(auc - 0.2, 4),
                        "log_loss": round(1.1 - auc, 4),
                    },
                    "tags": {"features": "3", "data": f"{at(hour):%Y-%m}"},
                    "description": f"Retrained on data to {at(hour):%Y-%m-%d}.",
                    "archived_at": at(hour + 24 * 200)
                    if hour + 24 * 200 < hours and v < 5
                    else None,
                }
            )
        changes = _production(rows, rng, name, created, hours, at, world)
        series_changes = tuple((max(0, int(h)), v) for h, v, _ in changes)
        canary = None
        latest = config.versions
        production = changes[-1][1]
        if i % 20 == 3 and latest != production:
            canary_hour = hours - rng.randint(24, 240)
            canary = (canary_hour, latest)
            rows["traffic_policies"].append(
                {
                    "model_name": name,
                    "kind": "canary",
                    "arms": [
                        {"version": None, "weight": 90.0},
                        {"version": latest, "weight": 10.0},
                    ],
                    "shadow": None,
                    "sticky": None,
                    "created_at": at(canary_hour),
                    "created_by": owner,
                    "reason": "canary of the retrained version",
                }
            )
        elif i % 20 == 7:
            for kind, arms in (
                ("split", [{"version": None, "weight": 50.0}, {"version": latest, "weight": 50.0}]),
                ("none", []),
            ):
                rows["traffic_policies"].append(
                    {
                        "model_name": name,
                        "kind": kind,
                        "arms": arms,
                        "shadow": None,
                        "sticky": None,
                        "created_at": at(hours - (500 if kind == "split" else 400)),
                        "created_by": owner,
                        "reason": "A/B test" if arms else "A/B test over",
                    }
                )
        if latest != production and i % 3 == 0:
            rows["aliases"].append(
                {
                    "model_name": name,
                    "alias": "staging",
                    "version": latest,
                    "updated_at": at(created[-1] + 2),
                    "updated_by": owner,
                }
            )
        _reviews(rows, rng, name, created, latest, production, at, i)
        world.series.append(SeriesModel(name, features, 0.0, aucs[production - 1], series_changes))
        world.log.append(
            LogModel(name, features, series_changes, canary, feedback=i < 20 * SERVE_EVERY)
        )
        _alerts(rows, rng, name, features, production, hours, at)
    world.counts = log_counts(config)
    world.series = [
        SeriesModel(s.name, s.features, max(20.0, n / hours), s.roc_auc, s.changes)
        for s, n in zip(world.series, world.counts, strict=True)
    ]
    for team in TEAMS:
        for h in range(0, hours, 1):
            started = at(h + 0.02)
            seconds = rng.uniform(2, 40)
            failed = rng.random() < 0.01
            rows["job_runs"].append(
                {
                    "job": f"monitor-{team}",
                    "trigger": "schedule",
                    "owner": "sched-1:4242",
                    "started_at": started,
                    "finished_at": started + timedelta(seconds=seconds),
                    "seconds": seconds,
                    "status": "failed" if failed else "succeeded",
                    "message": "the log window had no rows" if failed else "",
                    "details": {"models": config.models // len(TEAMS)},
                }
            )


def _run_rows(
    rows: dict[str, list[dict[str, Any]]],
    rng: random.Random,
    name: str,
    run_id: str,
    author: str,
    when: datetime,
    auc: float,
) -> None:
    rows["runs"].append(
        {
            "id": run_id,
            "model_name": name,
            "status": "finished",
            "user": author,
            "started_at": when - timedelta(hours=1),
            "ended_at": when - timedelta(minutes=20),
            "params": {
                "max_iter": rng.choice([100, 200, 300]),
                "learning_rate": rng.choice([0.05, 0.1]),
            },
            "git": {
                "commit": f"{rng.getrandbits(160):040x}",
                "dirty": rng.random() < 0.1,
                "branch": "main",
                "remote": "git@example.com:acme/models.git",
            },
            "environment": {
                "python": "3.11.9",
                "platform": "Linux-x86_64",
                "packages": {"scikit-learn": "1.9.1", "pandas": "3.1.1", "numpy": "2.3.5"},
            },
            "error": None,
        }
    )
    for kind, n in (
        ("train", rng.randint(50_000, 900_000)),
        ("eval", rng.randint(10_000, 200_000)),
    ):
        rows["datasets"].append(
            {
                "run_id": run_id,
                "name": kind,
                "content_hash": f"sha256:{rng.getrandbits(256):064x}",
                "n_rows": n,
                "fingerprint": {"rows": n, "columns": 24, "schema": "sha256:abc"},
                "logged_at": when - timedelta(minutes=50),
            }
        )
    for key, value in (("roc_auc", auc), ("accuracy", auc - 0.07), ("log_loss", 1.1 - auc)):
        rows["run_metrics"].append(
            {
                "run_id": run_id,
                "key": key,
                "value": value,
                "step": 0,
                "logged_at": when - timedelta(minutes=25),
            }
        )


def _production(
    rows: dict[str, list[dict[str, Any]]],
    rng: random.Random,
    name: str,
    created: list[float],
    hours: int,
    at: Callable[[float], datetime],
    world: World,
) -> list[tuple[float, int, str]]:
    """Promotions (and a rollback now and then) of some versions: (hour, version, action)."""
    n = len(created)
    picks = sorted(rng.sample(range(1, n + 1), k=min(n - 1, rng.randint(4, 8))))
    changes: list[tuple[float, int, str]] = []
    last_hour = -1e9
    for v in picks:
        hour = max(created[v - 1] + rng.uniform(6, 24 * 5), last_hour + 1)
        if hour >= hours - 1:
            break
        changes.append((hour, v, "set"))
        last_hour = hour
        if len(changes) > 1 and rng.random() < 0.15 and hour + 72 < hours:
            last_hour = hour + rng.uniform(2, 72)
            changes.append((last_hour, changes[-2][1], "rollback"))
    if not changes:
        changes.append((created[0] + 1, 1, "set"))
    previous = None
    for hour, v, action in changes:
        rows["alias_changes"].append(
            {
                "model_name": name,
                "alias": "production",
                "version": v,
                "previous_version": previous,
                "action": action,
                "at": at(hour),
                "by": rng.choice(SCIENTISTS),
                "reason": "AUC fell after the release"
                if action == "rollback"
                else "better on the gates",
            }
        )
        world.promoted.append((name, v, int(hour)))
        previous = v
    rows["aliases"].append(
        {
            "model_name": name,
            "alias": "production",
            "version": changes[-1][1],
            "updated_at": at(changes[-1][0]),
            "updated_by": "sam",
        }
    )
    return changes


def _reviews(
    rows: dict[str, list[dict[str, Any]]],
    rng: random.Random,
    name: str,
    created: list[float],
    latest: int,
    production: int,
    at: Callable[[float], datetime],
    i: int,
) -> None:
    """Approvals of promoted versions (and their requests), gate records, a few open
    requests and risks."""
    promoted = {c["version"] for c in rows["alias_changes"][-20:] if c["model_name"] == name}
    for v in sorted(promoted | {latest}):
        when = at(created[v - 1] + 3)
        passed = v in promoted or rng.random() < 0.7
        rows["gate_records"].append(
            {
                "model_name": name,
                "version": v,
                "digest": f"sha256:{rng.getrandbits(256):064x}",
                "champion": max(1, v - 1),
                "passed": passed,
                "failed": [] if passed else ["roc_auc"],
                "data_source": "eval split of the run (100,000 rows)",
                "report": {
                    "passed": passed,
                    "failed": [] if passed else ["roc_auc"],
                    "gates": [
                        {
                            "name": g,
                            "passed": passed or g != "roc_auc",
                            "applicable": True,
                            "value": round(rng.uniform(0.7, 0.9), 4),
                            "limit": 0.75,
                            "detail": "",
                            "kind": "metric",
                            "data": {},
                        }
                        for g in ("roc_auc", "accuracy", "schema", "parity", "fairness")
                    ],
                    "metrics": {},
                    "seconds": {"predictions": 1.8},
                },
                "created_at": when,
                "created_by": "sam",
            }
        )
        if v not in promoted:
            continue
        approver = rng.choice(APPROVERS)
        rows["approvals"].append(
            {
                "model_name": name,
                "version": v,
                "approver": approver,
                "reason": "gates pass, card reviewed",
                "created_at": when + timedelta(hours=2),
            }
        )
        rows["approval_requests"].append(
            {
                "model_name": name,
                "version": v,
                "requested_by": "sam",
                "comment": "ready for review",
                "created_at": when + timedelta(hours=1),
                "status": "approved",
                "decided_by": approver,
                "decided_at": when + timedelta(hours=2),
                "reason": "gates pass, card reviewed",
            }
        )
    if i % 17 == 0 and latest not in promoted:
        rows["approval_requests"].append(
            {
                "model_name": name,
                "version": latest,
                "requested_by": "sara",
                "comment": "retrained on last month's data; AUC +0.01",
                "created_at": at(created[-1] + 4),
                "status": "open",
                "decided_by": None,
                "decided_at": None,
                "reason": "",
            }
        )
    if i % 10 == 0:
        rows["risks"].append(
            {
                "model_name": name,
                "version": None,
                "title": "Feature drift in a new market",
                "severity": rng.choice(["low", "medium", "high"]),
                "owner": "sam",
                "mitigation": "weekly drift review",
                "status": "open",
                "created_at": at(created[0]),
                "created_by": "sam",
                "closed_at": None,
                "closed_by": None,
                "resolution": "",
            }
        )


def _alerts(
    rows: dict[str, list[dict[str, Any]]],
    rng: random.Random,
    name: str,
    features: tuple[str, str, str],
    version: int,
    hours: int,
    at: Callable[[float], datetime],
) -> None:
    for _ in range(rng.randint(0, 6)):
        hour = rng.uniform(0, hours)
        feature = rng.choice(features)
        value = rng.uniform(0.2, 0.6)
        open_ = hour > hours - 24 * 7 and rng.random() < 0.5
        rows["alerts"].append(
            {
                "id": f"{rng.getrandbits(128):032x}",
                "rule": "feature-drift",
                "key": f"{name}/{feature}",
                "severity": rng.choice(["warning", "critical"]),
                "model_name": name,
                "version": version,
                "metric": "psi",
                "feature": feature,
                "value": value,
                "threshold": 0.2,
                "message": f"{name}: psi of {feature} is {value:.2f} (> 0.20)",
                "status": "sent",
                "deliveries": {"email": {"ok": True, "attempts": 1, "error": None}},
                "created_at": at(hour),
                "acknowledged_at": None if open_ else at(hour + 3),
                "acknowledged_by": None if open_ else "sam",
            }
        )


def _health_rows(health: dict[str, dict[str, object]], world: World) -> list[dict[str, Any]]:
    end = world.start + timedelta(hours=world.hours)
    return [
        {
            "model_name": name,
            **values,
            "window_start": end - timedelta(hours=1),
            "window_end": end,
            "quality": [],
            "label_coverage": 0.31,
            "updated_at": end + timedelta(minutes=2),
        }
        for name, values in health.items()
    ]


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
