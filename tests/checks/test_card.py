"""Model cards: every section from what Shipyard knows (registry, lineage, policy, the latest
gate record, waivers, risks) and what people wrote; JSON, Markdown and escaped HTML."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from card_data import WAIVER_REASON, record_validation
from shipyard import Client
from shipyard.checks import build_card, card_html, card_markdown
from shipyard.config import ProjectConfig
from shipyard.errors import NotFound
from shipyard.registry import CardNotes, Gates, Registry, Risks
from shipyard.store import Store

PROJECT = ProjectConfig.model_validate(
    {"gates": {"require": False}, "models": {"churn": {"sensitive": ["plan"]}}}
)
OBJECTIVE = "Keep customers who would leave, with a retention offer."


@pytest.fixture
def registered(
    store: Store, client_for: Callable[[str], Client], fitted_pipeline, training_data
) -> Client:  # type: ignore[no-untyped-def]
    """churn v1 by alice, from a tracked run (lineage: git, the train dataset)."""
    alice = client_for("alice")
    Registry(store).create_model(
        "churn", actor="alice", objective=OBJECTIVE, accept="roc_auc >= 0.8"
    )
    X, y, Xe, ye = training_data
    with alice.start_run(model="churn") as run:
        run.register(fitted_pipeline, X_train=X, y_train=y, X_eval=Xe, y_eval=ye, onnx=False)
    return alice


@pytest.fixture
def validated(store: Store, registered: Client, approver: Client) -> Store:
    """v1 validated (fairness failed), waived by bob, with risks and written sections."""
    record_validation(store)
    Gates(store).waive("churn", 1, "fairness:plan", actor="bob", reason=WAIVER_REASON)
    risks = Risks(store)
    risks.add("churn", title="Trained before the price change", severity="high",
              owner="carol", mitigation="Retrain after Q3", actor="alice")  # fmt: skip
    closed = risks.add("churn", title="Old", severity="low", owner="dan", actor="alice")
    risks.close("churn", closed.id, actor="alice", resolution="obsolete")
    notes = CardNotes(store)
    notes.set("churn", 1, "intended_use", "Monthly retention campaign, EU customers.",
              actor="alice")  # fmt: skip
    notes.set("churn", 1, "caveats", "Not for <script>alert('x')</script> pricing.",
              actor="alice")  # fmt: skip
    return store


def test_card_sections_come_from_what_shipyard_knows(validated: Store, training_data) -> None:  # type: ignore[no-untyped-def]
    card = build_card(validated, "churn", 1, project=PROJECT)
    X, _, Xe, _ = training_data
    d = card.details
    assert (d.name, d.version, d.author, d.flavor, d.task) == (
        "churn", 1, "alice", "sklearn", "classification",
    )  # fmt: skip
    assert d.classes == ["churn", "stay"] and d.digest.startswith("sha256:") and d.size > 0
    assert d.run_id is not None and "scikit-learn" in d.frameworks
    assert d.stage == "candidate" and d.approved_by == []

    assert card.intended_use.objective == OBJECTIVE
    assert card.intended_use.criterion == "roc_auc >= 0.8"
    assert card.intended_use.criterion_met is True
    assert card.intended_use.notes == "Monthly retention campaign, EU customers."
    assert card.factors.sensitive == ["plan"] and card.factors.sliced == ["plan"]

    (auc, accept) = card.metrics.validated
    assert (auc.name, auc.value, auc.ci_low, auc.ci_high, auc.limit, auc.champion) == (
        "roc_auc", 0.842, 0.811, 0.869, 0.8, 0.83,
    )  # fmt: skip
    assert (accept.name, accept.ci_low, accept.ci_high) == ("accept", 0.811, 0.869)
    assert "roc_auc" in card.metrics.registered  # the archive's own eval metrics
    validation = card.metrics.validation
    assert validation is not None and validation.failed == ["fairness:plan"]
    assert validation.by == "carol" and validation.passed is False

    assert card.evaluation_data.data_source == "the candidate's own eval rows (150 rows)"
    assert card.evaluation_data.rows == 150 and card.evaluation_data.archive_rows == len(Xe)
    (train,) = card.training_data.datasets
    assert train.name == "train" and train.rows == len(X)
    assert train.content_hash.startswith("sha256:")
    assert {"name": "age", "dtype": "integer"} in train.columns

    (fair,) = card.quantitative_analyses.fairness
    assert fair.name == "fairness:plan" and not fair.passed and fair.waived
    assert fair.facts["equalized_odds_difference"] == 0.12
    (groups,) = fair.tables
    assert groups.columns == ["", "rows", "selection_rate"]
    assert groups.rows == [["basic", 48, 0.21], ["pro", 52, 0.34]]
    (slices,) = card.quantitative_analyses.slices
    assert slices.tables[0].rows[0] == ["plan", "basic", 48, 0.79]

    (waiver,) = card.ethical_considerations.waivers
    assert (waiver.gate, waiver.approver, waiver.reason) == ("fairness:plan", "bob", WAIVER_REASON)
    assert [g.name for g in card.caveats.failed_gates] == ["fairness:plan"]
    (risk,) = card.caveats.open_risks  # the closed one is not a caveat
    assert (risk.title, risk.severity, risk.owner, risk.scope) == (
        "Trained before the price change", "high", "carol", "all versions",
    )  # fmt: skip


def test_card_json_markdown_and_html(validated: Store) -> None:
    card = build_card(validated, "churn", 1, project=PROJECT)
    data = json.loads(json.dumps(card.to_json()))
    assert list(data)[:9] == [
        "details", "intended_use", "factors", "metrics", "evaluation_data", "training_data",
        "quantitative_analyses", "ethical_considerations", "caveats",
    ]  # fmt: skip
    assert data["ethical_considerations"]["waivers"][0]["approver"] == "bob"
    assert data["metrics"]["validated"][0]["ci_low"] == 0.811

    md = card_markdown(card)
    assert md.startswith("# Model card: churn v1\n")
    for heading in ("Model details", "Intended use", "Factors", "Metrics", "Evaluation data",
                    "Training data", "Quantitative analyses", "Ethical considerations",
                    "Caveats and recommendations"):  # fmt: skip
        assert f"\n## {heading}\n" in md
    assert OBJECTIVE in md and "roc_auc >= 0.8 (met in the latest validation)" in md
    assert "| roc_auc | 0.842 | [0.811, 0.869] | 0.8 | 0.83 | passed |" in md
    signed = card.ethical_considerations.waivers[0].at
    assert f'fairness:plan waived by bob on {signed:%Y-%m-%d}: "{WAIVER_REASON}"' in md
    assert "fairness:plan (FAILED, waived)" in md
    assert "| high | Trained before the price change | carol | Retrain after Q3 |" in md

    html = card_html(card)
    assert "<script>alert(" not in html  # a written section cannot run script
    assert "Not for &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; pricing." in html
    assert WAIVER_REASON in html and OBJECTIVE in html
    assert "[0.811, 0.869]" in html and 'id="chart-1"' in html  # the intervals' chart
    assert 'id="chart-2"' in html  # the selection rates by group of fairness:plan
    assert "Trained before the price change" in html and "selection_rate" in html


def test_card_before_any_validation(store: Store, registered: Client) -> None:
    card = build_card(store, "churn", 1, project=PROJECT)
    assert card.metrics.validation is None and card.metrics.validated == []
    assert card.intended_use.criterion_met is None
    assert card.evaluation_data.data_source is None
    assert card.quantitative_analyses.fairness == [] and card.caveats.failed_gates == []
    md = card_markdown(card)
    assert "Not validated yet: run shipyard validate churn 1." in md
    assert "No open risks in the register." in md
    html = card_html(card)
    assert "chart-1" not in html and "roc_auc &gt;= 0.8 (not judged yet" in html


def test_a_report_of_another_shape_is_read_leniently(store: Store, registered: Client) -> None:
    mv = Registry(store).get_version("churn", 1)
    report = {
        "passed": True,
        "gates": [
            {"name": "metric:accuracy", "passed": True, "value": "0.9", "data": "oops"},
            {"passed": False},  # no name: skipped
            "not a gate",
            {"name": "fairness:plan", "passed": True, "data": {"nested": {"a": [1, 2]}}},
        ],
    }
    Gates(store).record("churn", 1, digest=mv.digest, passed=True, failed=[], champion=None,
                        data_source="x", report=report, actor="carol")  # fmt: skip
    card = build_card(store, "churn", 1, project=PROJECT)
    (accuracy,) = card.metrics.validated
    assert (accuracy.name, accuracy.value, accuracy.ci_low) == ("accuracy", 0.9, None)
    (fair,) = card.quantitative_analyses.fairness
    assert fair.tables[0].rows == [["a", "[1, 2]"]]
    assert card.evaluation_data.rows is None
    card_markdown(card), card_html(card)  # render without error


def test_card_of_an_unknown_version_or_model(store: Store, registered: Client) -> None:
    with pytest.raises(NotFound, match="Model 'churn' has no version 4; its versions are 1 to 1"):
        build_card(store, "churn", 4, project=PROJECT)
    with pytest.raises(NotFound, match="Did you mean 'churn'"):
        build_card(store, "chrun", 1, project=PROJECT)
