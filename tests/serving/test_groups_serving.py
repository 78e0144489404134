"""Model groups served as one endpoint, on a real server: chain and ensembles, members
following their aliases live, every member's version in the prediction log."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from serving.conftest import GROUP_ROWS as ROWS
from shipyard import Client
from shipyard.packaging import prepare_archive
from shipyard.predlog import PredictionLog
from shipyard.registry import Groups, Registry
from shipyard.serving import create_app, serve_in_thread
from shipyard.settings import ServeSettings
from shipyard.store import Store


def _settings(**kw: object) -> ServeSettings:
    return ServeSettings(auth=False, runtime="native", poll_interval_seconds=0.05, **kw)  # type: ignore[arg-type]


def test_a_chain_feeds_each_members_output_to_the_next_and_logs_every_version(
    store: Store, group_registry: Registry, tmp_path: Path
) -> None:
    log = PredictionLog(tmp_path / "predlog").open()
    try:
        app = create_app(store, settings=_settings(), prediction_log=log)
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=20) as client:
            answer = client.post("/models/retention/predict", json={"records": ROWS})
            v2 = client.post(
                "/v2/models/retention/infer",
                json={
                    "id": "r1",
                    "inputs": [
                        {"name": c, "datatype": t, "shape": [2], "data": [r[c] for r in ROWS]}
                        for c, t in (
                            ("age", "INT64"),
                            ("income", "FP64"),
                            ("tenure", "FP64"),
                            ("plan", "BYTES"),
                        )
                    ],
                },
            )
            metadata = client.get("/v2/models/retention").json()
            listed = client.get("/models").json()["groups"]
            ready = client.get("/v2/models/retention/ready")
            label = client.post(
                "/models/retention/feedback",
                json={"prediction_id": answer.json()["prediction_ids"][0], "label": 4000.0},
            )
        log.flush()
        body = answer.json()
        assert answer.status_code == 200, body
        assert body["model"] == "retention" and body["members"] == {"churn": 1, "value": 1}
        assert answer.headers["X-Shipyard-Members"] == "churn=1,value=1"
        names = [g["name"] for g in listed]
        assert names == sorted(names) and "retention" in names
        retention = listed[names.index("retention")]
        assert retention["combine"] == "chain" and retention["error"] is None
        assert retention["members"] == ["churn@production", "value@production"]
        assert retention["summary"] == "chain of churn@production -> value@production"
        # The chain by hand: churn's probability of "churn" is value's input.
        churn, value = group_registry.load("churn", 1), group_registry.load("value", 1)
        frame = pd.DataFrame(ROWS)
        proba = churn.predict_proba(frame)[:, 0]
        expected = value.predict(
            pd.DataFrame({"income": frame["income"], "churn_proba_churn": proba})
        )
        np.testing.assert_allclose(body["predictions"], expected)
        assert v2.status_code == 200, v2.text
        outputs = {o["name"]: o for o in v2.json()["outputs"]}
        np.testing.assert_allclose(outputs["predict"]["data"], expected)
        assert v2.json()["id"] == "r1" and v2.json()["parameters"]["members"]["value"] == 1
        assert label.status_code == 200 and label.json()["matched"] == 1
        assert [i["name"] for i in metadata["inputs"]] == ["age", "income", "tenure", "plan"]
        assert metadata["parameters"]["members"] == {"churn": 1, "value": 1}
        assert [o["name"] for o in metadata["outputs"]] == ["predict", "prediction_id"]
        assert ready.status_code == 200 and ready.json()["ready"] is True

        pid = body["prediction_ids"][0]
        members = log.query(
            "SELECT prediction_id, version, arm FROM predictions ORDER BY prediction_id",
            model="churn",
        )
        assert set(members["arm"]) == {"group:retention"}
        assert pid in set(members["prediction_id"])
        grouped = log.query(
            "SELECT prediction_id, arm, member__churn, member__value FROM predictions",
            model="retention",
        )
        assert grouped["member__churn"].tolist() == [1, 1, 1, 1]
        assert grouped["member__value"].tolist() == [1, 1, 1, 1]
        assert set(grouped["arm"]) == {"group"} and pid in set(grouped["prediction_id"])
    finally:
        log.close()


def test_ensembles_average_or_vote_and_follow_a_members_promotion_live(
    store: Store, group_registry: Registry
) -> None:
    app = create_app(store, settings=_settings())
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        mean = client.post("/models/consensus/predict", json={"records": ROWS}).json()
        vote = client.post("/models/votes/predict", json={"records": ROWS}).json()
        churn = client.post("/models/churn/predict", json={"records": ROWS}).json()
        tree = client.post("/models/churn_tree/predict", json={"records": ROWS}).json()
        expected = (np.array(churn["probabilities"]) + np.array(tree["probabilities"])) / 2
        np.testing.assert_allclose(mean["probabilities"], expected)
        assert mean["classes"] == ["churn", "stay"]
        assert mean["predictions"] == [["churn", "stay"][i] for i in expected.argmax(axis=1)]
        # Two voters: agreement wins, a tie goes to the first member (churn).
        assert vote["predictions"] == churn["predictions"]

        def members_after(action: str) -> dict[str, int]:
            deadline = time.monotonic() + 3
            while True:
                got = client.post("/models/consensus/predict", json={"records": ROWS[:1]})
                assert got.status_code == 200
                if action in ("", got.headers["X-Shipyard-Members"]):
                    return dict(got.json()["members"])
                assert time.monotonic() < deadline, f"{action} not seen in 3 s"
                time.sleep(0.02)

        assert members_after("") == {"churn": 1, "churn_tree": 1}
        group_registry.promote("churn", 2, actor="alice")
        assert members_after("churn=2,churn_tree=1")["churn"] == 2
        group_registry.rollback("churn", actor="alice")
        assert members_after("churn=1,churn_tree=1")["churn"] == 1


def test_a_group_whose_member_is_not_served_or_missing_says_why(
    store: Store, group_registry: Registry
) -> None:
    app = create_app(store, settings=_settings(models=("churn", "churn_tree")))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        chain = client.post("/models/retention/predict", json={"records": ROWS})
        ok = client.post("/models/consensus/predict", json={"records": ROWS})
        bad = client.post("/models/consensus/predict", json={"records": [{"age": "x"}]})
        nobody = client.post("/models/nobody/predict", json={"records": ROWS})
        Groups(store, group_registry).delete("consensus", actor="alice")
        deadline = time.monotonic() + 3
        while client.post("/models/consensus/predict", json={"records": ROWS}).status_code != 404:
            assert time.monotonic() < deadline, "a deleted group still answers"
            time.sleep(0.02)
    assert chain.status_code == 503
    assert "member value@production is not served by this server" in chain.text
    assert ok.status_code == 200
    assert bad.status_code == 422
    assert nobody.status_code == 404


def test_a_group_record_keeps_its_members_versions_through_lookup(tmp_path: Path) -> None:
    from shipyard.predlog import find_prediction

    with PredictionLog(tmp_path / "predlog") as log:
        log.append(
            [
                {
                    "prediction_id": "0190000000000000000000000a",
                    "model": "retention",
                    "version": 2,
                    "arm": "group",
                    "inputs": {"age": 40},
                    "prediction": 1.5,
                    "members": {"churn": 3, "value": 7},
                },
                {
                    "prediction_id": "0190000000000000000000000b",
                    "model": "churn",
                    "version": 3,
                    "inputs": {"age": 40},
                    "prediction": "stay",
                },
            ]
        )
        log.flush()
        group = find_prediction(tmp_path / "predlog", "0190000000000000000000000a")
        plain = find_prediction(tmp_path / "predlog", "0190000000000000000000000b")
    assert group is not None and group["members"] == {"churn": 3, "value": 7}
    assert plain is not None and plain["members"] == {}


def test_a_member_promoted_to_an_incompatible_schema_stops_the_chain_with_the_reason(
    store: Store,
    group_registry: Registry,
    approver: Client,
    training_data,  # type: ignore[no-untyped-def]
) -> None:
    from sklearn.linear_model import LinearRegression

    X, _, _, _ = training_data
    plain = LinearRegression().fit(X[["income"]], 0.1 * X["income"])
    group_registry.register(
        prepare_archive(plain, X_train=X[["income"]], y_train=0.1 * X["income"], onnx=False),
        name="value",
        actor="alice",
    )
    approver.approve("value", 2, reason="ok")
    app = create_app(store, settings=_settings())
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        assert client.post("/models/retention/predict", json={"records": ROWS}).status_code == 200
        group_registry.promote("value", 2, actor="alice")
        deadline = time.monotonic() + 3
        while (
            got := client.post("/models/retention/predict", json={"records": ROWS})
        ).status_code == 200:
            assert time.monotonic() < deadline, "the chain still answers with value v2"
            time.sleep(0.02)
        ready = client.get("/v2/models/retention/ready")
        group_registry.rollback("value", actor="alice")
        deadline = time.monotonic() + 3
        while client.post("/models/retention/predict", json={"records": ROWS}).status_code != 200:
            assert time.monotonic() < deadline, "the chain did not come back with value v1"
            time.sleep(0.02)
    assert got.status_code == 503
    assert "with churn v1, value v2: value cannot follow churn in a chain" in got.text
    assert ready.status_code == 400 and ready.json()["ready"] is False


def test_a_member_at_another_alias_follows_that_alias(
    store: Store,
    group_registry: Registry,
    fitted_pipeline,
    training_data,  # type: ignore[no-untyped-def]
) -> None:
    X, y, _, _ = training_data
    candidate = prepare_archive(fitted_pipeline, X_train=X, y_train=y, onnx=False)
    group_registry.register(candidate, name="churn_tree", actor="alice")  # v2, same classes
    group_registry.promote("churn_tree", 1, to="staging", actor="alice")
    Groups(store, group_registry).create(
        "trial", ["churn@production", "churn_tree@staging"], "mean", actor="alice"
    )
    app = create_app(store, settings=_settings())
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        first = client.post("/models/trial/predict", json={"records": ROWS})
        group_registry.promote("churn_tree", 2, to="staging", actor="alice")
        deadline = time.monotonic() + 3
        while (got := client.post("/models/trial/predict", json={"records": ROWS})).json()[
            "members"
        ]["churn_tree"] != 2:
            assert time.monotonic() < deadline, "churn_tree@staging v2 not followed in 3 s"
            time.sleep(0.02)
    assert first.json()["members"] == {"churn": 1, "churn_tree": 1}
    # v2 of churn_tree is churn's own pipeline: the mean is churn's probabilities.
    churn = group_registry.load("churn", 1).predict_proba(pd.DataFrame(ROWS))
    np.testing.assert_allclose(got.json()["probabilities"], churn)
