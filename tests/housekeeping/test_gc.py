"""``collect_garbage``: exact retention of monitoring results and job runs, and archive files
of archived versions deleted except where an alias or a traffic policy still points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from retention_rows import add_job_run, add_monitoring_row, rows_left
from shipyard import Client
from shipyard.audit import list_events
from shipyard.errors import NotFound
from shipyard.housekeeping import collect_garbage
from shipyard.store import Store
from shipyard.store.tables import TrafficPolicy

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def _monitoring(store: Store, days_ago: float, tag: str) -> None:
    add_monitoring_row(store, NOW - timedelta(days=days_ago), tag)


def _job_run(store: Store, days_ago: float, status: str, tag: str) -> None:
    add_job_run(store, NOW - timedelta(days=days_ago), status, tag)


def test_monitoring_results_and_job_runs_past_retention_go_exactly(
    store: Store, tmp_path: Any
) -> None:
    for days, tag in ((400, "m400"), (31, "m31"), (29, "m29"), (0, "m0")):
        _monitoring(store, days, tag)
    for days, status, tag in (
        (30, "succeeded", "j30"),
        (8, "failed", "j8"),
        (40, "running", "j40-running"),  # a run in progress is never deleted
        (6, "succeeded", "j6"),
    ):
        _job_run(store, days, status, tag)
    kwargs: dict[str, Any] = {
        "log_root": tmp_path / "no-log",
        "predictions_older_than": timedelta(days=90),
        "monitoring_older_than": timedelta(days=30),
        "job_runs_older_than": timedelta(days=7),
        "actor": "ops",
        "now": NOW,
    }
    dry = collect_garbage(store, dry_run=True, **kwargs)
    assert (dry.monitoring_rows, dry.job_runs, dry.partitions) == (2, 2, [])
    assert rows_left(store) == (["m0", "m29", "m31", "m400"], ["j30", "j40-running", "j6", "j8"])
    with store.read() as session:
        assert list_events(session, action="gc.completed") == []  # a dry run is not a change
    done = collect_garbage(store, **kwargs)
    assert (done.monitoring_rows, done.job_runs) == (2, 2)
    assert rows_left(store) == (["m0", "m29"], ["j40-running", "j6"])
    again = collect_garbage(store, **kwargs)
    assert (again.monitoring_rows, again.job_runs) == (0, 0)
    _monitoring(store, 500, "m500")
    kept = collect_garbage(store, **{**kwargs, "monitoring_older_than": None})  # "keep"
    assert kept.monitoring_rows == 0 and "m500" in rows_left(store)[0]
    with store.read() as session:
        events = list_events(session, action="gc.completed")
    assert len(events) == 3 and {e.actor for e in events} == {"ops"}
    first = events[-1]  # newest first
    assert first.details["monitoring_rows"] == 2 and first.details["job_runs"] == 2


@pytest.fixture
def four_versions(
    client_for: Any, approver: Client, fitted_pipeline: Any, training_data: Any
) -> Client:
    """v1: production again (rolled back to) although archived; v2: archived, unused;
    v3: archived but still the shadow of a traffic policy; v4: not archived."""
    alice: Client = client_for("alice")
    X, y, _, _ = training_data
    for _ in range(4):
        alice.register(fitted_pipeline, name="churn", X_train=X, y_train=y, onnx=False)
    for v in (1, 2):
        approver.approve("churn", v, reason="ok")
    alice.promote("churn", 1)
    alice.promote("churn", 2)
    alice.registry.archive("churn", 1, actor="alice")  # nothing points to v1 now
    alice.rollback("churn")  # production -> v1: an alias points to an archived version
    alice.registry.archive("churn", 2, actor="alice")
    alice.registry.archive("churn", 3, actor="alice")
    with alice.store.write() as session:  # a policy row naming v3 (as one might, restored)
        session.add(
            TrafficPolicy(
                model_name="churn",
                kind="shadow",
                arms=[],
                shadow=3,
                sticky=None,
                created_at=NOW,
                created_by="alice",
                reason="",
            )
        )
    assert alice.registry.aliases("churn") == {"production": 1}
    return alice


def test_archived_artifacts_spare_aliases_and_policies(four_versions: Client) -> None:
    store = four_versions.store
    registry = four_versions.registry
    keys = {v: registry.get_version("churn", v).archive_key for v in (1, 2, 3, 4)}
    sizes = {v: store.artifacts.size(k) for v, k in keys.items()}
    kwargs: dict[str, Any] = {
        "log_root": store.artifacts.url,
        "predictions_older_than": None,
        "monitoring_older_than": None,
        "actor": "ops",
    }
    dry = collect_garbage(store, archived_artifacts=True, dry_run=True, **kwargs)
    assert dry.artifacts == ["churn v2"] and dry.artifact_bytes == sizes[2]
    assert all(store.artifacts.exists(k) for k in keys.values())
    plain = collect_garbage(store, **kwargs)  # without archived_artifacts: no archive goes
    assert plain.artifacts == [] and store.artifacts.exists(keys[2])
    done = collect_garbage(store, archived_artifacts=True, **kwargs)
    assert done.artifacts == ["churn v2"] and done.artifact_bytes == sizes[2]
    assert [store.artifacts.exists(keys[v]) for v in (1, 2, 3, 4)] == [True, False, True, True]
    # the registry rows and history stay; loading the deleted one is a clear NotFound
    assert [i.version.version for i in registry.versions("churn")] == [4, 3, 2, 1]
    assert registry.get_version("churn", 2).archived_at is not None
    with pytest.raises(NotFound, match=r"churn v2 is archived and its archive file was deleted"):
        registry.load("churn:2")
    assert registry.load("churn@production").version == 1  # protected by the alias
    assert registry.load("churn:3").version == 3  # protected by the policy
    with store.read() as session:
        deleted = list_events(session, action="version.artifacts_deleted")
        completed = list_events(session, action="gc.completed")
        policies = session.scalar(select(func.count()).select_from(TrafficPolicy))
    assert [(e.subject, e.actor) for e in deleted] == [("model:churn/2", "ops")]
    assert deleted[0].details == {"archive": keys[2], "bytes": sizes[2]}
    assert completed[0].details["artifacts"] == ["churn v2"]  # newest first
    assert policies == 1
    again = collect_garbage(store, archived_artifacts=True, **kwargs)
    assert again.artifacts == [] and again.artifact_bytes == 0
