"""``Tracker.import_run``: a run made elsewhere, recorded as it was, in one audited step."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pandas as pd
import pytest

from shipyard import Client
from shipyard.audit import list_events
from shipyard.dataset import fingerprint
from shipyard.errors import InvalidInput


def test_an_imported_run_keeps_its_times_params_metrics_git_and_source(
    client_for: Callable[[str], Client],
) -> None:
    alice = client_for("alice")
    started, ended = datetime(2026, 1, 2, 3, 4, tzinfo=UTC), datetime(2026, 1, 2, 5, tzinfo=UTC)
    fp = fingerprint(pd.DataFrame({"x": [1.0, 2.0, None]}), name="train")
    run = alice.tracker.import_run(
        model="churn",
        user="alice",
        params={"C": "1.0"},
        metrics={"loss": [(0, 0.9), (1, 0.5)], "auc": [(0, 0.8)]},
        started_at=started,
        ended_at=ended,
        status="killed",
        git={"commit": "abc123"},
        source={"kind": "mlflow", "run_id": "4e2a"},
        datasets=[fp],
    )
    got = alice.tracker.get(run.id)
    assert (got.status, got.params, got.git) == ("killed", {"C": "1.0"}, {"commit": "abc123"})
    assert got.started_at.replace(tzinfo=UTC) == started
    assert got.ended_at is not None and got.ended_at.replace(tzinfo=UTC) == ended
    assert got.environment == {"imported_from": {"kind": "mlflow", "run_id": "4e2a"}}
    assert alice.tracker.metrics(run.id) == {"loss": [(0, 0.9), (1, 0.5)], "auc": [(0, 0.8)]}
    [dataset] = alice.tracker.datasets(run.id)
    assert (dataset.name, dataset.content_hash) == ("train", fp.content_hash)
    with alice.store.read() as session:
        [event] = [e for e in list_events(session) if e.subject == f"run:{run.id}"]
    assert event.action == "run.imported" and event.details["source"]["run_id"] == "4e2a"


def test_an_unknown_status_is_refused(client_for: Callable[[str], Client]) -> None:
    alice = client_for("alice")
    now = datetime.now(UTC)
    with pytest.raises(InvalidInput, match="Unknown run status 'RUNNING'"):
        alice.tracker.import_run(
            model="churn",
            user="alice",
            params={},
            metrics={},
            started_at=now,
            ended_at=None,
            status="RUNNING",
            source={},
        )
    assert alice.tracker.list_runs() == []
