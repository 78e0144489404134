"""``check_canary`` on generated prediction logs written through ``PredictionLog``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from canary_logs import arm_records, register_churn
from gates_off import NO_GATES
from shipyard.checks import CanaryRules, CanaryVerdict, check_canary
from shipyard.errors import InvalidInput, InvalidTransition, NotFound
from shipyard.predlog import PredictionLog
from shipyard.registry import Policy, Registry, Traffic
from shipyard.store import Store

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)


@pytest.fixture
def churn(store: Store, fitted_pipeline, training_data, approver) -> Registry:  # type: ignore[no-untyped-def]
    """``churn`` v1 (production) and v2, v3 (approved), by alice."""
    return register_churn(
        store, fitted_pipeline, training_data, approver, versions=3, approved=(1, 2, 3)
    )


def run(
    store: Store,
    tmp_path: Path,
    policy: Policy,
    production: list[dict[str, object]],
    candidate: list[dict[str, object]],
    **rules: object,
) -> CanaryVerdict:
    with PredictionLog(tmp_path / "log") as log:
        log.append(production + candidate)
    return check_canary(
        store,
        "churn",
        tmp_path / "log",
        until=policy.created_at + timedelta(hours=1),
        rules=CanaryRules(**rules),  # type: ignore[arg-type]
    )


def gate(verdict: CanaryVerdict, name: str) -> str:
    return next(g.status for g in verdict.gates if g.name == name)


@pytest.fixture
def canary(store: Store, churn: Registry) -> Policy:
    return Traffic(store, NO_GATES).canary("churn", 2, 20, actor="alice")


def test_healthy_canary_is_promoted(store: Store, canary: Policy, tmp_path: Path) -> None:
    verdict = run(
        store,
        tmp_path,
        canary,
        arm_records(canary, 800, version=1, arm="production", seed=1, errors=1),
        arm_records(canary, 200, version=2, arm="canary", seed=2),
    )
    assert verdict.decision == "promote", verdict.reasons
    assert [g.status for g in verdict.gates] == ["pass"] * 4 + ["skip"]  # no labels
    assert (verdict.production.version, verdict.candidate.version) == (1, 2)
    assert (verdict.production.requests, verdict.candidate.requests) == (800, 200)
    assert verdict.production.refused == 1 and verdict.candidate.arm == "canary"
    assert len(verdict.reasons) == 5 and verdict.reasons[0].startswith("requests pass")
    assert verdict.reasons[4].startswith("performance skip: 0 labelled predictions")
    # Deterministic: the same log and window give the same verdict.
    again = check_canary(store, "churn", tmp_path / "log", until=verdict.until, rules=CanaryRules())
    assert again.to_dict() == verdict.to_dict()
    assert verdict.to_dict()["arms"]["candidate"]["requests"] == 200


def test_canary_with_errors_is_rolled_back(store: Store, canary: Policy, tmp_path: Path) -> None:
    verdict = run(
        store,
        tmp_path,
        canary,
        arm_records(canary, 900, version=1, arm="production", seed=1),
        arm_records(canary, 100, version=2, arm="canary", seed=2, errors=10),
    )
    assert verdict.decision == "rollback"
    assert [g.name for g in verdict.failed] == ["errors"]
    reason = next(r for r in verdict.reasons if r.startswith("errors"))
    assert "canary v2 10.0% (10/100)" in reason and "production v1 0.0% (0/900)" in reason
    assert "significantly higher" in reason


def test_one_error_in_a_hundred_is_no_rollback(
    store: Store, canary: Policy, tmp_path: Path
) -> None:
    verdict = run(
        store,
        tmp_path,
        canary,
        arm_records(canary, 900, version=1, arm="production", seed=1),
        arm_records(canary, 100, version=2, arm="canary", seed=2, errors=1),
    )
    assert gate(verdict, "errors") == "pass" and verdict.decision == "promote"


def test_excess_that_is_not_significant_waits(store: Store, canary: Policy, tmp_path: Path) -> None:
    # 4/100 vs 1/100: 3 points above, but the 99% interval of the difference holds 0.
    verdict = run(
        store,
        tmp_path,
        canary,
        arm_records(canary, 100, version=1, arm="production", seed=1, errors=1),
        arm_records(canary, 100, version=2, arm="canary", seed=2, errors=4),
    )
    assert gate(verdict, "errors") == "wait" and verdict.decision == "wait"
    assert "not significant" in verdict.reasons[1]


def test_slow_canary_is_rolled_back(store: Store, canary: Policy, tmp_path: Path) -> None:
    verdict = run(
        store,
        tmp_path,
        canary,
        arm_records(canary, 800, version=1, arm="production", seed=1, latency_ms=20.0),
        arm_records(canary, 200, version=2, arm="canary", seed=2, latency_ms=60.0),
    )
    assert verdict.decision == "rollback"
    assert [g.name for g in verdict.failed] == ["latency"]
    assert "too slow" in verdict.failed[0].reason
    assert verdict.candidate.latency_p99_ms is not None
    assert verdict.production.latency_p99_ms is not None
    assert verdict.candidate.latency_p99_ms > 2.5 * verdict.production.latency_p99_ms


def test_shifted_outputs_are_rolled_back(store: Store, canary: Policy, tmp_path: Path) -> None:
    verdict = run(
        store,
        tmp_path,
        canary,
        arm_records(canary, 800, version=1, arm="production", seed=1),
        arm_records(canary, 200, version=2, arm="canary", seed=2, proba=(5.0, 2.0)),
    )
    assert verdict.decision == "rollback"
    assert [g.name for g in verdict.failed] == ["drift"]
    assert "proba_churn" in verdict.failed[0].reason
    # Without the drift gate the same canary passes.
    skipped = check_canary(
        store, "churn", tmp_path / "log", until=verdict.until, rules=CanaryRules(drift=None)
    )
    assert skipped.decision == "promote" and "drift" not in [g.name for g in skipped.gates]


def test_too_few_requests_wait(store: Store, canary: Policy, tmp_path: Path) -> None:
    verdict = run(
        store,
        tmp_path,
        canary,
        arm_records(canary, 80, version=1, arm="production", seed=1),
        arm_records(canary, 20, version=2, arm="canary", seed=2),
    )
    assert verdict.decision == "wait"
    assert gate(verdict, "requests") == "wait" and gate(verdict, "drift") == "wait"
    assert "canary v2 20" in verdict.reasons[0] and "needs 100" in verdict.reasons[0]
    lower = check_canary(
        store, "churn", tmp_path / "log", until=verdict.until, rules=CanaryRules(min_requests=20)
    )
    assert lower.decision == "promote", lower.reasons


def test_records_before_the_policy_or_since_are_not_counted(
    store: Store, canary: Policy, tmp_path: Path
) -> None:
    before = arm_records(canary, 50, version=2, arm="canary", seed=3, offset=-100.0, errors=50)
    verdict = run(
        store,
        tmp_path,
        canary,
        arm_records(canary, 200, version=1, arm="production", seed=1),
        before + arm_records(canary, 200, version=2, arm="canary", seed=2, offset=10.0),
    )
    assert verdict.candidate.requests == 200 and verdict.decision == "promote"
    later = check_canary(
        store,
        "churn",
        tmp_path / "log",
        since=canary.created_at + timedelta(seconds=5),
        until=verdict.until,
    )
    assert later.production.requests == 0 and later.decision == "wait"


def test_split_candidate_against_production(store: Store, churn: Registry, tmp_path: Path) -> None:
    policy = Traffic(store, NO_GATES).split("churn", {1: 50, 3: 50}, actor="alice")
    verdict = run(
        store,
        tmp_path,
        policy,
        arm_records(policy, 300, version=1, arm="split:1", seed=1),
        arm_records(policy, 300, version=3, arm="split:3", seed=2, errors=30),
    )
    assert (verdict.production.arm, verdict.candidate.arm) == ("split:1", "split:3")
    assert verdict.kind == "split" and verdict.decision == "rollback"


def test_no_canary_and_unknown_model_are_clear_errors(
    store: Store, churn: Registry, tmp_path: Path
) -> None:
    with pytest.raises(InvalidTransition, match="no canary or split in force"):
        check_canary(store, "churn", tmp_path)
    Traffic(store, NO_GATES).shadow(
        "churn", 2, actor="alice"
    )  # a shadow answers nothing: no canary
    with pytest.raises(InvalidTransition, match="no canary or split in force"):
        check_canary(store, "churn", tmp_path)
    with pytest.raises(NotFound, match="no model 'nope'"):
        check_canary(store, "nope", tmp_path)
    Traffic(store, NO_GATES).split("churn", {2: 50, 3: 50}, actor="alice")
    with pytest.raises(InvalidTransition, match="no production arm"):
        check_canary(store, "churn", tmp_path)
    with pytest.raises(InvalidInput, match="min_requests"):
        check_canary(store, "churn", tmp_path, rules=CanaryRules(min_requests=0))


def test_rollback_of_a_stale_policy_changes_nothing(store: Store, canary: Policy) -> None:
    """What ``traffic check --act`` relies on: it ends only the policy it judged."""
    traffic = Traffic(store, NO_GATES)
    newer = traffic.canary("churn", 3, 10, actor="alice")
    with pytest.raises(InvalidTransition, match=f"policy {canary.id} is no longer in force"):
        traffic.rollback("churn", actor="cron", policy_id=canary.id)
    assert traffic.current("churn") == newer
    outcome = traffic.rollback("churn", actor="cron", reason="check", policy_id=newer.id)
    assert outcome.previous == newer and traffic.current("churn") is None


@pytest.mark.parametrize(("canary_accuracy", "status"), [(0.85, "pass"), (0.55, "fail")])
def test_performance_gate_with_labels(
    store: Store, canary: Policy, tmp_path: Path, canary_accuracy: float, status: str
) -> None:
    production = arm_records(canary, 400, version=1, arm="production", seed=1)
    candidate = arm_records(canary, 400, version=2, arm="canary", seed=2)
    with PredictionLog(tmp_path / "log") as log:
        log.append(production + candidate)
        for records, accuracy in ((production, 0.85), (candidate, canary_accuracy)):
            right = int(accuracy * len(records))
            frame = pd.DataFrame(
                {
                    "prediction_id": [r["prediction_id"] for r in records],
                    "label": [
                        r["prediction"]
                        if i < right
                        else ("stay" if r["prediction"] == "churn" else "churn")
                        for i, r in enumerate(records)
                    ],
                }
            )
            log.record_feedback_frame("churn", frame)
    verdict = check_canary(
        store, "churn", tmp_path / "log", until=canary.created_at + timedelta(hours=1)
    )
    assert gate(verdict, "performance") == status, verdict.reasons
    reason = verdict.reasons[4]
    assert f"accuracy canary v2 {canary_accuracy:.3f}" in reason and "(n=400)" in reason
    assert verdict.decision == ("promote" if status == "pass" else "rollback")


def _labelled(log: PredictionLog, records: list[dict[str, object]], accuracy: float) -> None:
    """Labels for ``records``: the first ``accuracy`` share agree with the prediction."""
    right = int(accuracy * len(records))
    labels = [
        r["prediction"] if i < right else ("stay" if r["prediction"] == "churn" else "churn")
        for i, r in enumerate(records)
    ]
    frame = pd.DataFrame({"prediction_id": [r["prediction_id"] for r in records], "label": labels})
    log.record_feedback_frame("churn", frame)


@pytest.mark.parametrize(("canary_accuracy", "decision"), [(0.97, "promote"), (0.85, "rollback")])
def test_drifted_outputs_pass_only_when_the_labels_show_the_canary_better(
    store: Store, canary: Policy, tmp_path: Path, canary_accuracy: float, decision: str
) -> None:
    # the canary answers differently (P(churn) ~ Beta(5, 2) instead of Beta(2, 5)): output drift
    production = arm_records(canary, 400, version=1, arm="production", seed=1)
    candidate = arm_records(canary, 400, version=2, arm="canary", seed=2, proba=(5.0, 2.0))
    with PredictionLog(tmp_path / "log") as log:
        log.append(production + candidate)
        _labelled(log, production, 0.85)
        _labelled(log, candidate, canary_accuracy)
    verdict = check_canary(
        store, "churn", tmp_path / "log", until=canary.created_at + timedelta(hours=1)
    )
    drift = next(g for g in verdict.gates if g.name == "drift")
    assert "drifted" in drift.reason or "p=" in drift.reason
    if decision == "promote":
        assert drift.status == "pass" and "significantly better" in drift.reason
    else:  # as good, not better: the drift stands
        assert drift.status == "fail"
    assert verdict.decision == decision, verdict.reasons
