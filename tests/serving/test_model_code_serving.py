"""Done-when of the model's own code: a pipeline with the data scientist's transformer,
registered by a script in its project folder, is batch-scored (``shipyard score``) and served
(``shipyard serve``) by processes started in another folder, with identical predictions; a
model whose module was lost serves nothing but says why, and does not stop its neighbour."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from server_process import wait_live
from shipyard.serving import free_port

FEATURES = """
from sklearn.base import BaseEstimator, TransformerMixin

from helpers import ratio


class AddRatio(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        X = X.copy()
        X["ratio"] = ratio(X["a"], X["b"])
        return X
"""

HELPERS = "def ratio(a, b):\n    return a / (b + 1)\n"

LOST = """
from sklearn.base import BaseEstimator, TransformerMixin


class Doubler(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X * 2
"""

TRAIN = """
import os
import sys

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from features import AddRatio
import lost_module
from shipyard import Client, Settings

rng = np.random.default_rng(0)
X = pd.DataFrame({"a": rng.normal(5, 2, 300), "b": rng.uniform(0, 3, 300)})
y = (X["a"] / (X["b"] + 1) > 2).astype(int)
model = make_pipeline(AddRatio(), LogisticRegression()).fit(X, y)
lost = make_pipeline(lost_module.Doubler(), LogisticRegression()).fit(X, y)

client = Client(Settings()).open()
client.register(model, name="feat", X_train=X, y_train=y)
os.remove(lost_module.__file__)  # renamed since the session imported it
client.register(lost, name="lost", X_train=X, y_train=y, load_check=False)
for name in ("feat", "lost"):
    client.registry.promote(name, 1, actor="admin", to="staging")

rows = X.sample(25, random_state=1).reset_index(drop=True)
rows.to_parquet(sys.argv[1])
proba = model.predict_proba(rows)[:, 1]
pd.DataFrame({"prediction": model.predict(rows), "proba_1": proba}).to_parquet(sys.argv[2])
"""


@pytest.fixture
def registered(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The project folder's script has registered ``feat`` and ``lost`` (both at staging);
    returns the environment and an empty folder elsewhere."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "features.py").write_text(FEATURES)
    (project / "helpers.py").write_text(HELPERS)
    (project / "lost_module.py").write_text(LOST)
    (project / "train.py").write_text(TRAIN)
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path / "home"), "SHIPYARD_USER": "admin"}
    for key in ("SHIPYARD_DB_URL", "SHIPYARD_ARTIFACTS"):
        env.pop(key, None)
    done = subprocess.run(
        [sys.executable, "train.py", str(tmp_path / "rows.parquet"), str(tmp_path / "ref.parquet")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return env, elsewhere


def test_scored_and_served_from_another_folder(registered: tuple[dict[str, str], Path]) -> None:
    env, elsewhere = registered
    rows, ref = elsewhere.parent / "rows.parquet", pd.read_parquet(elsewhere.parent / "ref.parquet")

    def shipyard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shipyard", *args],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    scored = shipyard("score", "feat@staging", str(rows), "out.parquet")
    assert scored.returncode == 0, scored.stderr
    out = pd.read_parquet(elsewhere / "out.parquet")
    np.testing.assert_array_equal(out["prediction"].to_numpy(), ref["prediction"].to_numpy())
    np.testing.assert_allclose(out["proba_1"].to_numpy(), ref["proba_1"].to_numpy())

    refused = shipyard("score", "lost@staging", str(rows), "lost.parquet")
    assert refused.returncode == 1
    assert "lost v1 cannot be loaded: it needs the module 'lost_module'" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (elsewhere / "lost.parquet").exists()

    port = free_port()
    err = (elsewhere / "serve.err").open("wb")
    serve = ["serve", "--port", str(port), "--alias", "staging", "--models", "feat,lost"]
    server = subprocess.Popen(
        [sys.executable, "-m", "shipyard", *serve, "--no-auth", "--no-log"],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_live(url, server, elsewhere / "serve.err", timeout=120)

        records = pd.read_parquet(rows).to_dict(orient="records")
        answer = httpx.post(f"{url}/models/feat/predict", json={"records": records}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == ref["prediction"].tolist()

        # Whatever the shape of these bodies, each names the missing module.
        ready = httpx.get(f"{url}/v2/health/ready")
        assert ready.status_code != 200
        assert "it needs the module 'lost_module'" in ready.text
        lost_ready = httpx.get(f"{url}/v2/models/lost/ready")
        assert lost_ready.status_code != 200 or lost_ready.json()["ready"] is False
        assert "lost_module" in lost_ready.text
        feat_ready = httpx.get(f"{url}/v2/models/feat/ready")
        assert feat_ready.status_code == 200 and feat_ready.json()["ready"] is True
        metadata = httpx.get(f"{url}/v2/models/lost")
        assert metadata.status_code == 503 and "lost_module" in metadata.text
        listing = {m["name"]: m for m in httpx.get(f"{url}/models").json()["models"]}
        assert "lost_module" in listing["lost"]["error"]
        assert listing["feat"]["error"] is None
        unavailable = httpx.post(f"{url}/models/lost/predict", json={"records": records[:1]})
        assert unavailable.status_code == 503 and "lost_module" in unavailable.text
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        err.close()
    log = (elsewhere / "serve.err").read_text()
    assert "Traceback" not in log and "Application startup failed" not in log
