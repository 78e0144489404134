"""The UI benchmark's registry, drawn from one seed (no I/O): 1,000 models of 12 teams with
their versions, runs, datasets, promotions and rollbacks, traffic policies and job runs
(``draw``); the reviews and alerts come from ``ui_reviews``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ui_predlog import LogModel, zipf_counts
from ui_reviews import alerts, reviews
from ui_series import SeriesModel

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


def draw(world: World, config: SeedConfig) -> None:
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
        reviews(rows, rng, name, created, latest, production, at, i)
        world.series.append(SeriesModel(name, features, 0.0, aucs[production - 1], series_changes))
        world.log.append(
            LogModel(name, features, series_changes, canary, feedback=i < 20 * SERVE_EVERY)
        )
        alerts(rows, rng, name, features, production, hours, at)
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
