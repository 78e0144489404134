"""Every framework end to end, as a user runs it: register (with its ONNX export or the reason
for none), ``shipyard validate``, serve with ``--runtime auto`` on a real server, score a file
with ``shipyard score``, and ``shipyard monitor run`` on the predictions the server logged.

One model per framework: XGBoost, LightGBM and CatBoost on numeric features (served on ONNX,
parity verified), LightGBM and CatBoost with a categorical feature (no ONNX export: served
natively, the reason said), and a plain Python rule set (native).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from cli_support import cli, point_cli_at
from flavor_models import CASES, Case
from gates_off import GATES_OFF_TOML
from shipyard import Client, Settings
from shipyard.packaging import flat_predictions
from shipyard.predlog import PredictionLog
from shipyard.serving import create_app, serve_in_thread
from shipyard.settings import ServeSettings
from shipyard.store import Store

_E2E = {
    "xgboost-classifier": "onnx",
    "lightgbm-classifier": "onnx",
    "lightgbm-categorical": "native",
    "catboost-classifier": "onnx",
    "catboost-categorical": "native",
    "catboost-multiclass": "onnx",
    "python-rules": "native",
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "runtime"),
    [(c, _E2E[c.id]) for c in CASES if c.id in _E2E],
    ids=[c.id for c in CASES if c.id in _E2E],
)
def test_register_serve_batch_and_monitor(
    case: Case,
    runtime: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    as_user = point_cli_at(monkeypatch, db_url, tmp_path, toml=GATES_OFF_TOML)
    assert cli(capsys, "users", "add", "bob", "--role", "approver")[0] == 0  # as admin
    model, X, y = case.fitted()
    name = case.flavor
    as_user("alice")
    alice = Client(Settings()).open()
    try:
        mv = alice.register(model, name=name, X_train=X, y_train=y, X_eval=X[:300], y_eval=y[:300])
        assert mv.flavor == case.flavor
        onnx = alice.load(f"{name}:1").manifest.onnx
    finally:
        alice.close()
    assert onnx is not None
    assert onnx["converted"] is (runtime == "onnx"), onnx["error"]

    # Every validation gate passes (explanations too: permutation importance for a model
    # with predict only), then bob approves and alice promotes v1 to 'production'.
    code, out, err = cli(capsys, "validate", name, "1", "--json")
    assert code == 0, out + err
    as_user("bob")
    assert cli(capsys, "approve", name, "1", "--reason", "end-to-end")[0] == 0
    as_user("alice")
    assert cli(capsys, "promote", name, "1")[0] == 0

    rows = X.sample(120, random_state=1).reset_index(drop=True)
    expected = flat_predictions(model.predict(rows))  # CatBoost's multiclass gives (n, 1)
    log_dir = tmp_path / "predlog"
    settings = ServeSettings(auth=False, runtime="auto")
    log = PredictionLog(log_dir).open()
    env = Settings()
    store = Store(env.database_url, env.artifacts_url, creator="admin").open()
    try:
        with serve_in_thread(create_app(store, settings=settings, prediction_log=log)) as url:
            listing = httpx.get(f"{url}/models").json()["models"]
            (served,) = [m for m in listing if m["name"] == name]
            assert served["runtime"] == runtime, served["runtime_reason"]
            if runtime == "native":
                assert (
                    served["runtime_reason"] == f"the archive has no ONNX export ({onnx['error']})"
                )
            answers = []
            for start in range(0, len(rows), 40):  # a few requests, as clients send them
                records = json.loads(rows[start : start + 40].to_json(orient="records"))
                response = httpx.post(f"{url}/models/{name}/predict", json={"records": records})
                assert response.status_code == 200, response.text
                answers.extend(response.json()["predictions"])
    finally:
        log.close()
        store.close()
    assert answers == expected.tolist()

    # Batch: the same rows through `shipyard score` give the same labels.
    src, dst = tmp_path / "rows.parquet", tmp_path / "scored.parquet"
    rows.to_parquet(src)
    code, out, err = cli(capsys, "score", f"{name}:1", str(src), str(dst))
    assert code == 0, err
    scored = pd.read_parquet(dst)
    assert scored["prediction"].tolist() == expected.tolist()
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(rows)
        for i, cls in enumerate(case.classes or []):
            np.testing.assert_allclose(scored[f"proba_{cls}"], proba[:, i], rtol=1e-6, atol=1e-9)

    # Monitoring: the logged traffic against the version's reference profile.
    code, out, err = cli(capsys, "monitor", "run", f"{name}:1", "--log-dir", str(log_dir), "--json")
    assert code in (0, 1), err
    report = json.loads(out)
    assert report["version"] == 1 and report["n_rows"] == len(rows)
    assert {f["name"] for f in report["features"]} >= set(X.columns)
