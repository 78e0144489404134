"""The loop of issue 11 end to end, on a real SQLite file and the real PostgreSQL, through the
product's own pipelines (what the ``shipyard`` commands call) and, for the human steps, the CLI:

1. drift on logged traffic → the ``[[alerts]]`` rule fires (delivered to a real webhook) and
   asks for a retraining → ``retrain_on_alerts`` trains the project's entry point on the
   feedback-joined log → the candidate is validated against production → approved by bob
   (``shipyard approve``) → ``shipyard promote --canary 25 --auto`` → canary traffic logged →
   ``advance_rollouts`` promotes it; the audit chain holds, with the events in order;
2. a worse candidate (trained on shuffled labels) fails its metric gates: the report names
   them and why, and promotion and canary refuse it naming them;
3. an unfair candidate (its predictions depend on ``sex``, declared sensitive) fails
   ``fairness:sex``; refused until bob signs a waiver (``shipyard waive``), which unblocks it
   and shows on its model card (``shipyard card``).

Promotions need a passing gate record here (``[gates] require`` is left at its default).

The world: churn depends on age, plan and sex (a real effect the project's training code
deliberately ignores: its pipeline drops ``sex``, so its models are fair by construction).
The drift moves the customers' ages up by 15 years; the relation stays, so the retrained
candidate and production answer alike and the canary judge can pass it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent / "alerting"))  # alerting_support

from alerting_support import HttpRecorder

from shipyard.audit import verify
from shipyard.auth import Users
from shipyard.checks import (
    MonitorRequest,
    RetrainRuns,
    ValidationRequest,
    advance_rollouts,
    build_card,
    card_markdown,
    load_entry,
    monitor_window,
    retrain_on_alerts,
    validate_version,
)
from shipyard.cli import run_cli
from shipyard.config import ProjectConfig, load_project
from shipyard.errors import InvalidTransition, PermissionDenied
from shipyard.packaging import prepare_archive
from shipyard.predlog import PredictionLog
from shipyard.registry import Gates, Registry, Rollouts, Traffic
from shipyard.store import Store
from shipyard.store.tables import AuditEvent

FEATURES = ["age", "income", "plan", "sex"]

#: The project's training code (``[models.churn.retrain] entry``), also used for v1.
TRAIN_MODULE = '''
"""Churn model training: a scaled logistic regression on age, income and plan (sex is
never used, on purpose)."""
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def train(frame):
    X, y = frame.drop(columns=["churned"]), frame["churned"]
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    return make_pipeline(prep, LogisticRegression(max_iter=500)).fit(X, y)
'''

PROJECT = """\
[channels.team]
type = "webhook"
url = "{hook}"
timeout = 5.0
attempts = 1

[[alerts]]
name = "input-drift"
metric = "drift_share"
threshold = 0.1
severity = "critical"
channels = ["team"]
action = "retrain"

[gates]
min_labels = 100
window = "1d"
max_p99_ratio = 3.0
metrics = [{{ metric = "roc_auc", max_drop = 0.02 }}]

[models.churn]
objective = "Call the customers likely to leave before they do"
accept = "roc_auc >= 0.65"
sensitive = ["sex"]

[models.churn.retrain]
entry = "train_churn:train"
source = "feedback"
target = "churned"
window = "1d"
channels = ["team"]
"""


def world(n: int, seed: int, *, age_shift: float = 0.0) -> pd.DataFrame:
    """``n`` customers with their ``churned`` label: churn rises with age, on the pro plan,
    and for women (``sex`` = F); ``age_shift`` moves the ages (the drift)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(45 + age_shift, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
            "sex": rng.choice(["F", "M"], n),
        }
    )
    logit = (
        0.12 * (frame["age"] - 45)
        + 1.2 * (frame["plan"] == "pro")
        + 1.5 * (frame["sex"] == "F")
        - 0.9
    )
    frame["churned"] = (logit + rng.logistic(0, 1, n) > 0).astype(int)
    return frame


def shuffled_labels(frame: pd.DataFrame) -> Any:
    """A worse candidate: the same code, fitted on labels shuffled out of their rows."""
    noise = frame.assign(churned=np.random.default_rng(3).permutation(frame["churned"].to_numpy()))
    return _pipeline(["plan"]).fit(noise[FEATURES], noise["churned"])


def uses_sex(frame: pd.DataFrame) -> Any:
    """An unfair candidate: the same pipeline with ``sex`` among its features."""
    return _pipeline(["plan", "sex"]).fit(frame[FEATURES], frame["churned"])


def _pipeline(categorical: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    return make_pipeline(prep, LogisticRegression(max_iter=500))


# -- the project, its people, its champion ------------------------------------------------


@pytest.fixture
def webhook() -> Iterator[HttpRecorder]:
    """A real HTTP server on a free port, answering 200 and keeping what it is sent."""
    server = HttpRecorder([200])
    yield server
    server.close()


@pytest.fixture
def project(tmp_path: Path, webhook: HttpRecorder) -> ProjectConfig:
    """shipyard.toml and the training module in the project folder (``tmp_path``)."""
    (tmp_path / "train_churn.py").write_text(TRAIN_MODULE, encoding="utf-8")
    (tmp_path / "shipyard.toml").write_text(PROJECT.format(hook=webhook.url), encoding="utf-8")
    return load_project(tmp_path / "shipyard.toml")


@pytest.fixture
def champion(store: Store, project: ProjectConfig, tmp_path: Path) -> Registry:
    """churn v1 by alice, trained by the project's code, validated (no champion yet),
    approved by bob and promoted: production, under the project's gates."""
    Users(store).set_role("bob", "approver", actor="admin")
    train, _ = load_entry("train_churn:train", name="churn", folder=tmp_path)
    rows = world(3_000, 0)
    fit, held = rows.iloc[:2_000], rows.iloc[2_000:]
    prepared = prepare_archive(
        train(fit),
        X_train=fit[FEATURES],
        y_train=fit["churned"],
        X_eval=held[FEATURES],
        y_eval=held["churned"],
        onnx=False,
    )
    registry = Registry(store, project)
    registry.register(prepared, name="churn", actor="alice")
    first = validate_version(store, ValidationRequest("churn", 1, actor="alice", project=project))
    assert first.passed, first.record.failed
    assert "eval rows" in first.data_source and first.record.champion is None
    registry.approve("churn", 1, actor="bob", reason="baseline")
    registry.promote("churn", 1, actor="alice")
    return registry


@pytest.fixture
def cli(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str]]:
    """``cli("bob", "approve", ...)``: the real CLI on the test store as that user, with
    SHIPYARD_CONFIG the project's shipyard.toml; returns (exit code, stdout + stderr)."""
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_CONFIG", str(tmp_path / "shipyard.toml"))
    monkeypatch.setenv("SHIPYARD_DB_URL", db_url)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "artifacts"))

    def run(user: str, *args: str) -> tuple[int, str]:
        monkeypatch.setenv("SHIPYARD_USER", user)
        capsys.readouterr()
        code = run_cli(list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, " ".join((out + err).split())

    return run


def log_traffic(
    log_root: Path,
    rows: pd.DataFrame,
    models: dict[tuple[int, str], tuple[Any, slice]],
    *,
    prefix: str,
    labelled: int,
) -> None:
    """Log every row as answered by the (version, arm) whose slice of ``rows`` holds it,
    with that model's real prediction and probabilities, and the labels of the first
    ``labelled`` rows, through the prediction log's own writer."""
    rng = np.random.default_rng(len(rows))
    records: list[dict[str, Any]] = []
    for (version, arm), (model, part) in models.items():
        chunk = rows.iloc[part]
        proba = model.predict_proba(chunk[FEATURES])
        for i, (index, inputs) in enumerate(chunk[FEATURES].to_dict(orient="index").items()):
            records.append(
                {
                    "prediction_id": f"{prefix}-{index}",
                    "model": "churn",
                    "version": version,
                    "arm": arm,
                    "inputs": inputs,
                    "prediction": int(proba[i, 1] > 0.5),
                    "proba": {"0": float(proba[i, 0]), "1": float(proba[i, 1])},
                    "latency_ms": float(rng.normal(2.0, 0.2)),
                    "status": "ok",
                }
            )
    labels = pd.DataFrame(
        {
            "prediction_id": [f"{prefix}-{i}" for i in rows.index[:labelled]],
            "label": rows["churned"].iloc[:labelled].tolist(),
        }
    )
    with PredictionLog(log_root) as log:
        log.append(records)
        assert log.record_feedback_frame("churn", labels).matched == labelled


def audit_actions(store: Store) -> list[tuple[str, str]]:
    with store.read() as session:
        assert verify(session).ok
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        return [(e.action, e.subject) for e in events]


# -- 1. the loop ------------------------------------------------------------------------------


def test_drift_alert_retrain_validate_approve_canary_promote(
    store: Store,
    project: ProjectConfig,
    champion: Registry,
    webhook: HttpRecorder,
    cli: Callable[..., tuple[int, str]],
    tmp_path: Path,
) -> None:
    log_root = tmp_path / "home" / "predictions"  # where the CLI's commands look
    v1 = champion.load("churn", 1).model

    # Drifted traffic answered by production, 2,000 of its 2,400 predictions labelled later.
    drifted = world(2_400, 1, age_shift=15)
    log_traffic(
        log_root, drifted, {(1, "production"): (v1, slice(None))}, prefix="d", labelled=2_000
    )

    now = datetime.now(UTC)
    monitored = monitor_window(
        store,
        MonitorRequest(
            "churn@production",
            actor="scheduler",
            project=project,
            log_root=log_root,
            start=now - timedelta(hours=1),
            end=now + timedelta(minutes=1),
            report=tmp_path / "drift.html",
        ),
    )
    assert monitored.report.n_rows == 2_400 and monitored.version == 1
    assert "age" in monitored.report.flagged() and "sex" not in monitored.report.flagged()
    (alert,) = monitored.alerts
    assert (alert.rule, alert.metric, alert.status) == ("input-drift", "drift_share", "sent")
    (delivered,) = webhook.requests
    assert "drift_share" in str(delivered.body)

    (outcome,) = retrain_on_alerts(
        store,
        monitored.alerts,
        actor="scheduler",
        project=project,
        log_root=log_root,
        report_dir=tmp_path / "reports",
    )
    assert outcome.status == "started", outcome.message
    retrained = outcome.result
    assert retrained is not None and retrained.version == 2
    assert retrained.source.startswith("feedback:") and retrained.champion == 1
    assert (retrained.train_rows, retrained.eval_rows) == (1_500, 500)  # the 2,000 labelled
    assert retrained.passed, [g for g in retrained.gates if not g["passed"]]
    assert retrained.notified == ["team"]
    assert "churn v2" in str(webhook.requests[-1].body)
    (run,) = RetrainRuns(store).history("churn")
    assert run.trigger == f"alert:{alert.id}" and run.status == "succeeded"
    # Trained on the drifted customers: its reference ages are those of the new traffic.
    v2 = champion.load("churn", 2)
    assert v2.model.named_steps["columntransformer"].named_transformers_["num"].mean_[0] == (
        pytest.approx(60, abs=1.5)
    )

    record = Gates(store).latest("churn", 2)
    assert record is not None and record.passed and record.champion == 1
    assert "held-out rows of feedback:" in record.data_source
    gates = {g["name"]: g for g in record.report["gates"]}
    assert {"accept", "metric:roc_auc", "fairness:sex", "schema"} <= set(gates)
    assert gates["fairness:sex"]["value"] >= 0.8  # sex is not among its features
    assert retrained.report_path is not None and "metric:roc_auc" in (
        retrained.report_path.read_text(encoding="utf-8")
    )

    # Nothing swaps without a human: alice cannot start the canary before bob approves it.
    code, out = cli("alice", "promote", "churn", "2", "--canary", "25", "--auto", "--bake", "1m")
    assert code == 1 and "churn v2 needs an approval" in out
    assert "its author (scheduler)" in out  # the retraining registered it
    code, out = cli("alice", "approve", "churn", "2", "--reason", "looks good to me")
    assert code == 1 and "'alice' (scientist) cannot approve" in out
    code, out = cli("bob", "approve", "churn", "2", "--reason", "handles the older customers")
    assert code == 0 and "bob approved churn v2" in out
    code, out = cli(
        "alice",
        "promote",
        "churn",
        "2",
        "--canary",
        "25",
        "--auto",
        "--steps",
        "25,100",
        "--bake",
        "1m",
        "--reason",
        "retrained on the drifted traffic",
    )
    assert code == 0 and "rollout #1 of v2: 25% → 100%" in out, out
    rollout = Rollouts(store, project).running("churn")
    assert rollout is not None and rollout.version == 2 and rollout.percent == 25
    code, out = cli("alice", "traffic", "advance", "churn")
    assert code == 0 and "No rollout is due" in out  # its minute of bake has not ended
    assert champion.aliases("churn")["production"] == 1

    # The canary's traffic: the same customers, a quarter answered by v2, all labelled.
    canary_rows = world(600, 2, age_shift=15)
    log_traffic(
        log_root,
        canary_rows,
        {(1, "production"): (v1, slice(0, 450)), (2, "canary"): (v2.model, slice(450, 600))},
        prefix="c",
        labelled=600,
    )
    (step,) = advance_rollouts(
        store,
        now=rollout.next_at + timedelta(seconds=1),
        project=project,
        actor="scheduler",
        log_root=log_root,
    )
    assert step.action == "promoted", (step.message, step.verdict and step.verdict.reasons)
    assert step.verdict is not None and step.verdict.candidate.requests == 150
    assert champion.aliases("churn")["production"] == 2
    assert Traffic(store, project).current("churn") is None
    code, out = cli("alice", "traffic", "rollouts", "churn")
    assert code == 0 and "promoted" in out

    assert [action for action, _ in audit_actions(store)] == [
        "store.created",
        "user.role_set",  # bob, approver
        "model.created",
        "version.registered",  # v1
        "version.validated",
        "version.approved",
        "version.promoted",
        "monitoring.completed",  # the drifted window
        "alert.sent",  # input-drift, to the webhook
        "retrain.started",
        "run.started",  # the tracked training run
        "version.registered",  # v2, by the retraining
        "run.finished",
        "version.validated",
        "alert.sent",  # the approvers told
        "retrain.finished",
        "version.approved",  # bob
        "traffic.canary",  # the rollout's first step
        "rollout.started",
        "version.promoted",
        "traffic.cleared",
        "rollout.promoted",
    ]


# -- 2. a worse candidate -----------------------------------------------------------------


@pytest.mark.sqlite_only  # the whole loop runs on PostgreSQL above; gates are not SQL
def test_a_worse_candidate_is_blocked_naming_the_failed_gates(
    store: Store, project: ProjectConfig, champion: Registry, tmp_path: Path
) -> None:
    rows = world(2_000, 4)
    prepared = prepare_archive(
        shuffled_labels(rows), X_train=rows[FEATURES], y_train=rows["churned"], onnx=False
    )
    champion.register(prepared, name="churn", actor="alice")
    fresh = world(1_000, 5)
    report = tmp_path / "worse.html"

    result = validate_version(
        store,
        ValidationRequest(
            "churn",
            2,
            actor="alice",
            project=project,
            data=fresh,
            target="churned",
            data_label="a fresh labelled sample",
            report=report,
        ),
    )

    assert not result.passed and result.record.champion == 1
    assert set(result.record.failed) == {"accept", "metric:roc_auc"}
    gates = {g["name"]: g for g in result.record.report["gates"]}
    auc = gates["metric:roc_auc"]
    assert auc["value"] < 0.6 < auc["data"]["champion"]["value"]
    assert "beyond max_drop 0.02" in auc["detail"]
    assert "does not meet the acceptance criterion roc_auc >= 0.65" in gates["accept"]["detail"]
    assert gates["fairness:sex"]["passed"] and gates["schema"]["passed"]
    html = report.read_text(encoding="utf-8")
    assert "2 gate(s) failed" in html and "metric:roc_auc" in html
    assert "beyond max_drop 0.02" in html and "a fresh labelled sample" in html

    champion.approve("churn", 2, actor="bob", reason="looks fine")  # four eyes is not enough
    for refuse in (
        lambda: champion.promote("churn", 2, actor="alice"),
        lambda: Traffic(store, project).canary("churn", 2, 10, actor="alice"),
        lambda: Rollouts(store, project).start(
            "churn", 2, [10], bake=timedelta(minutes=5), actor="alice"
        ),
    ):
        with pytest.raises(InvalidTransition, match=r"gate\(s\) accept, metric:roc_auc failed"):
            refuse()
    assert champion.aliases("churn")["production"] == 1
    assert Traffic(store, project).current("churn") is None


# -- 3. an unfair candidate, waived -------------------------------------------------------


@pytest.mark.sqlite_only  # the whole loop runs on PostgreSQL above; gates are not SQL
def test_an_unfair_candidate_is_blocked_until_an_approver_waives_it(
    store: Store,
    project: ProjectConfig,
    champion: Registry,
    cli: Callable[..., tuple[int, str]],
    tmp_path: Path,
) -> None:
    rows = world(2_000, 6)
    prepared = prepare_archive(
        uses_sex(rows), X_train=rows[FEATURES], y_train=rows["churned"], onnx=False
    )
    champion.register(prepared, name="churn", actor="alice")
    fresh = world(1_000, 7)
    fresh.to_parquet(tmp_path / "fresh.parquet")
    report = tmp_path / "unfair.html"

    result = validate_version(
        store,
        ValidationRequest(
            "churn",
            2,
            actor="alice",
            project=project,
            data=tmp_path / "fresh.parquet",
            target="churned",
            report=report,
        ),
    )

    assert not result.passed and result.record.failed == ["fairness:sex"]
    gates = {g["name"]: g for g in result.record.report["gates"]}
    assert gates["metric:roc_auc"]["passed"]  # more accurate than the champion ...
    fair = gates["fairness:sex"]  # ... by treating women and men differently
    assert fair["value"] < 0.8 and fair["limit"] == 0.8
    assert (
        "demographic parity ratio" in fair["detail"]
        and "is below the floor 0.8" in (fair["detail"])
    )
    rates = {g["group"]: g["selection_rate"] for g in fair["data"]["groups"]}
    assert rates["M"] / rates["F"] == pytest.approx(fair["value"])
    html = report.read_text(encoding="utf-8")
    assert "1 gate(s) failed" in html and "fairness:sex" in html
    assert "is below the floor 0.8" in html

    champion.approve("churn", 2, actor="bob", reason="more accurate")
    with pytest.raises(InvalidTransition, match=r"gate\(s\) fairness:sex failed"):
        champion.promote("churn", 2, actor="alice")
    code, out = cli("alice", "promote", "churn", "2", "--canary", "10")
    assert code == 1 and "fairness:sex" in out and "shipyard waive churn 2" in out

    # Only an approver other than the author signs a waiver, with a reason.
    with pytest.raises(PermissionDenied, match="cannot waive"):
        Gates(store).waive("churn", 2, "fairness:sex", actor="alice", reason="fine by me")
    code, out = cli("carol", "waive", "churn", "2", "fairness:sex", "--reason", "ok")
    assert code == 1 and "only users with the approver role" in out
    reason = "Reviewed with legal: retention offers, not a denial of service"
    code, out = cli("bob", "waive", "churn", "2", "fairness:sex", "--reason", reason)
    assert code == 0 and "bob waived gate fairness:sex of churn v2" in out

    code, out = cli("alice", "promote", "churn", "2")
    assert code == 0 and "v2" in out, out
    assert champion.aliases("churn")["production"] == 2

    card = build_card(store, "churn", 2, project=project)
    (waiver,) = card.ethical_considerations.waivers
    assert (waiver.gate, waiver.approver, waiver.reason) == ("fairness:sex", "bob", reason)
    markdown = card_markdown(card)
    assert f'fairness:sex waived by bob on {waiver.at:%Y-%m-%d}: "{reason}"' in markdown
    assert "FAILED, waived" in markdown
    code, out = cli("alice", "card", "churn", "2")
    assert code == 0 and "waived by bob" in out and reason in out
    actions = [a for a, s in audit_actions(store) if s == "model:churn/2"]
    assert actions.index("gate.waived") < actions.index("version.promoted")
