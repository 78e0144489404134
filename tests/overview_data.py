"""Data for the catalogue, model and monitoring tests: models registered through the registry
and monitoring windows stored the way the product stores them (``MonitoringResults.save`` of a
real ``DriftReport``, with real performance rows)."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from churn_data import churn_frame
from shipyard import Client
from shipyard.dataset import Profile, profile_frame
from shipyard.monitoring import MetricRow, MonitoringResults, compute_drift, compute_performance
from shipyard.store import Store


@functools.cache
def reference() -> Profile:
    return profile_frame(churn_frame(3_000, 0))


def register_churn(client: Client, name: str = "churn", description: str = "") -> int:
    """Register a small classifier of churn frames as a new version of ``name``."""
    X = churn_frame(600, 0)
    model = HistGradientBoostingClassifier(max_iter=3, categorical_features=["plan"])
    model.fit(X, (X["age"] > 45).astype(int))
    version = client.register(
        model, name=name, X_train=X, y_train=None, onnx=False, description=description
    )
    return int(version.version)


def shifted(seed: int, *features: str) -> pd.DataFrame:
    """A churn window; each named feature moved far from the reference."""
    frame = churn_frame(2_000, seed)
    for feature in features:
        if feature == "plan":
            frame["plan"] = "pro"
        elif feature == "income":
            frame["income"] = frame["income"] * 3
        else:
            frame[feature] = frame[feature] + 25.0
    return frame


def performance_rows(accuracy_of: float, seed: int = 0) -> list[MetricRow]:
    """Real performance rows (with intervals) of predictions right ``accuracy_of`` of the time."""
    rng = np.random.default_rng(seed)
    n = 400
    labels = rng.integers(0, 2, n)
    right = rng.random(n) < accuracy_of
    predictions = np.where(right, labels, 1 - labels)
    proba = np.clip(predictions * 0.8 + 0.1, 0, 1)
    ids = [f"p{i}" for i in range(n)]
    report = compute_performance(
        pd.DataFrame(
            {
                "prediction_id": ids,
                "prediction": predictions,
                "proba_0": 1 - proba,
                "proba_1": proba,
            }
        ),
        pd.DataFrame({"prediction_id": ids, "label": labels}),
        task="classification",
        classes=[0, 1],
        resamples=50,
    )
    return report.rows()


def save_window(
    client: Client,
    name: str,
    frame: pd.DataFrame,
    *,
    end: datetime,
    version: int = 1,
    hours: int = 1,
    extra: list[MetricRow] | None = None,
) -> str:
    """Store one monitoring window of ``frame`` ending at ``end``; returns its run id."""
    report = compute_drift(reference(), frame)
    return MonitoringResults(client.store).save(
        report,
        model=name,
        version=version,
        source=f"log:{end - timedelta(hours=hours):%Y-%m-%dT%H:%M}..{end:%Y-%m-%dT%H:%M}",
        actor="cron",
        window_start=end - timedelta(hours=hours),
        window_end=end,
        extra=extra or [],
    )


def raise_alert(
    store: Store, model: str, *, rule: str = "age-drift", message: str = "age drifted"
) -> str:
    """One alert of ``model`` raised through ``Alerts.raise_all`` (no channel); its id."""
    from shipyard.alerting import Alert, AlertRule, Alerts

    alert = Alert(
        rule=rule,
        severity="warning",
        model=model,
        version=1,
        metric="drift",
        feature="age",
        value=1.0,
        threshold=0.5,
        message=message,
    )
    rules = AlertRule(name=rule, metric="drift", feature="age", channels=[], cooldown="0m")
    (record,) = Alerts(store).raise_all([(rules, alert)], {}, actor="cron")
    return str(record.id)
