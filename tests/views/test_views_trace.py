"""``trace_prediction`` and ``served_at`` over a real store and a real prediction log."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gates_off import NO_GATES
from shipyard import Client
from shipyard.errors import InvalidInput, NotFound
from shipyard.predlog import PredictionLog
from shipyard.registry import Traffic
from shipyard.store import Store
from shipyard.views import TIME_EXAMPLE, parse_at, served_at, trace_prediction
from trace_support import HTML_INPUT, record, server_id, tracked_churn


@pytest.fixture
def churn(
    client_for: Callable[[str], Client], approver: Client, fitted_pipeline: Any, training_data: Any
) -> Client:
    return tracked_churn(client_for, approver, fitted_pipeline, training_data)


def test_a_trace_joins_the_prediction_to_its_version_run_code_data_and_label(
    store: Store, churn: Client, tmp_path: Path
) -> None:
    root = tmp_path / "log"
    now = datetime.now(UTC)
    pid = server_id(now)
    with PredictionLog(root) as log:
        log.append([record(pid, now, version=2, arm="v2")])
        log.record_feedback("churn", pid, "stay")
    trace = trace_prediction(store, root, pid)
    version = churn.registry.get_version("churn", 2)
    assert (trace.model, trace.version, trace.arm) == ("churn", 2, "v2")
    assert trace.digest == version.digest and trace.author == "alice"
    assert trace.inputs == {"age": 41, "plan": HTML_INPUT}
    assert trace.prediction == "churn" and trace.proba == {"churn": 0.8, "stay": 0.2}
    assert [label.label for label in trace.labels] == ["stay"]
    assert trace.run is not None and trace.run.user == "alice" and trace.run.params == {"C": 0.5}
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert trace.run.git.commit == head.strip() and trace.run.git.dirty is not None
    assert {d.name for d in trace.datasets} == {"eval", "train"}
    assert all(d.content_hash.startswith("sha256:") for d in trace.datasets)
    assert trace.environment is not None and "scikit-learn" in trace.environment.summary
    assert trace.latency_ms == 1.5 and trace.at is not None


def test_unknown_malformed_and_missing_log_are_refused(
    store: Store, churn: Client, tmp_path: Path
) -> None:
    with PredictionLog(tmp_path / "log") as log:
        log.append([record(server_id(datetime.now(UTC)), datetime.now(UTC))])
    unknown = server_id(datetime.now(UTC))
    with pytest.raises(NotFound, match=f"No logged prediction has the id '{unknown}'"):
        trace_prediction(store, tmp_path / "log", unknown)
    with pytest.raises(InvalidInput, match="hex digits"):
        trace_prediction(store, tmp_path / "log", "../../etc/passwd")
    with pytest.raises(NotFound, match="no prediction log"):
        trace_prediction(store, None, unknown)


def test_a_version_the_registry_does_not_know_is_traced_without_lineage(
    store: Store, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    pid = server_id(now)
    with PredictionLog(tmp_path / "log") as log:
        log.append([record(pid, now, model="fraud", version=7)])
    trace = trace_prediction(store, tmp_path / "log", pid)
    assert trace.version == 7 and trace.digest is None and trace.run is None


def _moment() -> datetime:
    time.sleep(0.02)
    moment = datetime.now(UTC)
    time.sleep(0.02)
    return moment


def test_served_at_follows_promotions_rollbacks_and_traffic(store: Store, churn: Client) -> None:
    before = _moment()
    churn.promote("churn", 1, reason="first")
    after_v1 = _moment()
    churn.promote("churn", 2, reason="better")
    after_v2 = _moment()
    Traffic(store, NO_GATES).canary("churn", 1, 10, actor="alice")
    during_canary = _moment()
    Traffic(store, NO_GATES).rollback("churn", actor="alice", reason="canary ended")
    churn.rollback("churn", reason="v2 misbehaves")
    after_rollback = _moment()

    nothing = served_at(store, "churn", before)
    assert nothing.version is None and "first production version was set at" in nothing.message
    assert served_at(store, "churn", after_v1).version == 1
    v2 = served_at(store, "churn", after_v2)
    assert (v2.version, v2.by, v2.reason, v2.policy) == (2, "alice", "better", None)
    canary = served_at(store, "churn", during_canary)
    assert canary.version == 2 and canary.policy is not None
    assert canary.policy["kind"] == "canary" and "v1 10%" in canary.message
    rolled = served_at(store, "churn", after_rollback)
    assert (rolled.version, rolled.action, rolled.policy) == (1, "rollback", None)
    assert "rolled back to" in rolled.message
    assert served_at(store, "churn", after_rollback, alias="staging").message.endswith(
        "it was never set."
    )
    with pytest.raises(NotFound, match="no model 'nope'"):
        served_at(store, "nope", after_v1)


def test_a_naive_time_is_utc_and_a_bad_time_shows_an_example() -> None:
    assert parse_at("2026-12-01T10:00") == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert parse_at("2026-12-01T11:00+01:00") == datetime(2026, 12, 1, 10, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="2026-12-01T10:00 \\(UTC\\)") as err:
        parse_at("yesterday")
    assert TIME_EXAMPLE in err.value.message
    assert parse_at("2026-12-01") - parse_at("2026-11-30") == timedelta(days=1)
