"""The version page and its /api twin: metrics, the gate report (fairness, explanations,
waivers), the card, risks, archive members with digests, ONNX parity, lineage (with the
source of a version imported from MLflow), approvals; the standalone card and validation
documents; unknown ids; escaping."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from review_support import APRIL, SAM, VERA, seed, ui_browsers
from ui_support import add_users

from shipyard.registry import CardNotes, Gates, Registry, Risks
from shipyard.store import Store
from shipyard.tracking import Tracker

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

V2 = "/ui/models/churn/versions/2"


def _report() -> dict[str, Any]:
    return {
        "passed": False,
        "failed": ["fairness:plan"],
        "rows": 150,
        "gates": [
            {"name": "accept", "kind": "accept", "passed": True, "applicable": True,
             "value": 0.81, "limit": 0.8, "detail": "roc_auc 0.81 >= 0.8", "data": {}},
            {"name": "fairness:plan", "kind": "fairness", "passed": False, "applicable": True,
             "value": 0.62, "limit": 0.8, "detail": "parity ratio <low>",
             "data": {"parity_ratio": 0.62, "equalized_odds": 0.1, "groups": [
                 {"group": "<i>pro</i>", "rows": 40, "selection_rate": 0.5,
                  "true_positive_rate": 0.7, "false_positive_rate": 0.2}]}},
            {"name": "explain", "kind": "explain", "passed": True, "applicable": True,
             "value": None, "limit": None, "detail": "", "data": {
                 "candidate": {"method": "shap", "rows": 150, "top": [
                     {"feature": "age", "importance": 0.31},
                     {"feature": "tenure", "importance": 0.12}]},
                 "moved": []}},
        ],
    }  # fmt: skip


@pytest.fixture
def registry(store: Store, prepared, fitted_pipeline, training_data, tmp_path: Path) -> Registry:  # type: ignore[no-untyped-def]
    """churn v1 (production), v2 (by sam, validated, a waiver, a risk, a card section) and v3
    (registered from a tracked run in a dirty git repository)."""
    registry = seed(store, prepared)
    mv = registry.get_version("churn", 2)
    gates = Gates(store)
    gates.record("churn", 2, digest=mv.digest, passed=False, failed=["fairness:plan"],
                 champion=1, data_source="the eval rows", report=_report(), actor=SAM)  # fmt: skip
    gates.waive("churn", 2, "fairness:plan", actor=APRIL, reason="plan is <not> sensitive")
    Risks(store).add("churn", title="<script>alert(1)</script> leak", severity="high",
                     owner="dana", actor=SAM, mitigation="mask it", version=2)  # fmt: skip
    CardNotes(store).set("churn", 2, "caveats", "Not for <minors>.", actor=SAM)
    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q"], ["-c", "user.email=a@b", "-c", "user.name=a", "commit",
                                   "-q", "--allow-empty", "-m", "x"]):  # fmt: skip
        subprocess.run(["git", *args], cwd=repo, check=True)
    (repo / "train.py").write_text("print(1)\n")
    X, y, Xe, ye = training_data
    with Tracker(store).start_run(model="churn", user=SAM, git_path=repo) as run:
        run.register(fitted_pipeline, X_train=X, y_train=y, X_eval=Xe, y_eval=ye, onnx=False)
    return registry


def test_the_page_shows_the_evidence_escaped(store: Store, registry: Registry) -> None:
    with ui_browsers(store) as login:
        page = login(VERA).get(V2)
    assert page.status_code == 200
    text = page.text
    assert "<script>alert(1)" not in text and "<b>model" not in text
    for shown in (
        "Churn &lt;b&gt;model&lt;/b&gt;",  # the description
        "&lt;script&gt;alert(1)&lt;/script&gt; leak",  # the risk
        "parity ratio &lt;low&gt;",  # a gate's detail
        "&lt;i&gt;pro&lt;/i&gt;",  # a fairness group
        "plan is &lt;not&gt; sensitive",  # the waiver
        "Not for &lt;minors&gt;.",  # the card section
        'class="badge warn">waived',
        "roc_auc",
        "age",
        "model/model.joblib",
        "parity holds",
        f"{V2}/validation",
        f"{V2}/card",
    ):
        assert shown in text, shown
    assert "/actions/promote" not in text  # a viewer sees no actions


def test_the_api_returns_what_the_page_shows(store: Store, registry: Registry) -> None:
    with ui_browsers(store) as login:
        sam = login(SAM)
        v2 = sam.get("/api/models/churn/versions/2").json()
        v3 = sam.get("/api/models/churn/versions/3").json()
        assert "/actions/promote?version=2" in sam.get(V2).text
    assert (v2["model"], v2["version"], v2["author"], v2["stage"]) == ("churn", 2, SAM, "candidate")
    assert (v2["production"], v2["policy"]) == (1, 0)
    assert [g["status"] for g in v2["gates"]["gates"]] == ["pass", "waived", "pass"]
    assert v2["gates"]["fairness"][0]["groups"][0]["group"] == "<i>pro</i>"
    assert [f["feature"] for f in v2["gates"]["explanation"]["features"]] == ["age", "tenure"]
    assert v2["risks"][0]["severity"] == "high" and v2["card"][0]["section"] == "caveats"
    members = {m["path"]: m["sha256"] for m in v2["archive"]["members"]}
    assert members["model.onnx"].startswith("sha256:") and v2["archive"]["onnx"]["converted"]
    lineage = v3["lineage"]
    assert lineage["run_found"] and lineage["run_user"] == SAM
    assert len(lineage["git_commit"]) == 40 and lineage["git_dirty"] is True
    assert lineage["datasets"][0]["name"] == "train"
    assert lineage["datasets"][0]["content_hash"]
    assert lineage["python"] and "scikit-learn" in lineage["packages"]
    assert v3["archive"]["onnx"] is None and v3["gates"] is None
    assert v3["lineage"]["source"] == {}  # trained here, not imported


def test_the_card_and_the_report_are_sandboxed_documents(store: Store, registry: Registry) -> None:
    with ui_browsers(store) as login:
        vera = login(VERA)
        card = vera.get(f"{V2}/card")
        report = vera.get(f"{V2}/validation")
        missing = vera.get("/ui/models/churn/versions/1/validation")
    assert card.status_code == 200 and "Model card: churn v2" in card.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; leak" in card.text
    assert report.status_code == 200 and "Validation of churn v2" in report.text
    for response in (card, report):
        assert response.headers["content-security-policy"].startswith("sandbox allow-scripts;")
    assert missing.status_code == 404 and "no validation yet" in missing.text


def test_unknown_models_and_versions_are_404(store: Store, registry: Registry) -> None:
    with ui_browsers(store) as login:
        vera = login(VERA)
        page = vera.get("/ui/models/<b>x</b>/versions/1")
        assert page.status_code == 404 and "<b>x</b>" not in page.text
        assert vera.get("/ui/models/churn/versions/9").status_code == 404
        api = vera.get("/api/models/churn/versions/9")
        assert api.status_code == 404
        assert api.json() == {"error": "Model 'churn' has no version 9; its versions are 1 to 3."}
        assert vera.get("/api/models/churn/versions/0").status_code == 400
        assert login(None).get("/api/models/churn/versions/1").status_code == 401


def test_a_deleted_archive_still_shows_the_page(store: Store, registry: Registry) -> None:
    mv = registry.get_version("churn", 3)
    store.artifacts.delete(mv.archive_key)
    with ui_browsers(store) as login:
        v3 = login(VERA).get("/api/models/churn/versions/3").json()
    assert v3["archive"]["members"] == [] and "missing" in v3["archive"]["error"]
    assert v3["lineage"]["git_commit"]  # the run still tells the commit


def test_a_version_imported_from_mlflow_shows_its_source(store: Store, tmp_path: Path) -> None:
    from importing.mlflow_support import fitted, loan_frame, save
    from shipyard.importing import import_mlflow

    add_users(store)
    X, y = loan_frame()
    # the MLflow model's folder, with markup in its name: the URI is shown as text
    path = save("sklearn", fitted("sklearn", X, y), tmp_path / "m<b>lf", input_example=X.head(20))
    import_mlflow(
        str(path), registry=Registry(store), tracker=Tracker(store), user=SAM, name="loan"
    )
    with ui_browsers(store) as login:
        vera = login(VERA)
        page = vera.get("/ui/models/loan/versions/1")
        api = vera.get("/api/models/loan/versions/1").json()
    source = api["lineage"]["source"]
    assert (source["kind"], source["uri"], source["flavor"]) == ("mlflow", str(path), "sklearn")
    assert page.status_code == 200
    assert "imported from MLflow" in page.text
    assert str(path).replace("<b>", "&lt;b&gt;") in page.text and "m<b>lf" not in page.text
    assert "reference data: the input example (20 rows)" in page.text
