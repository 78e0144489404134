"""``shipyard register MODEL_FILE --code-path ...``: a model file that needs the user's module."""

from __future__ import annotations

import importlib
import sys
import uuid
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from cli_support import cli, point_cli_at
from shipyard import Client, Settings

FEATURES = """
from sklearn.base import BaseEstimator, TransformerMixin

import {helpers}


class AddRatio(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X.assign(ratio={helpers}.ratio(X["a"], X["b"]))
"""


@pytest.fixture(params=["sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shipyard.db'}"


def test_register_a_model_file_with_its_code(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    point_cli_at(monkeypatch, db_url, tmp_path, toml=None)
    tag = uuid.uuid4().hex[:8]
    features, helpers = f"features_{tag}", f"helpers_{tag}"
    project = tmp_path / "project"
    project.mkdir()
    (project / f"{helpers}.py").write_text("def ratio(a, b):\n    return a / (b + 1)\n")
    (project / f"{features}.py").write_text(FEATURES.format(helpers=helpers))
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(5, 2, 200), "b": rng.uniform(0, 3, 200)})
    y = (X["a"] / (X["b"] + 1) > 2).astype(int)
    sys.path.insert(0, str(project))
    try:
        model = make_pipeline(importlib.import_module(features).AddRatio(), LogisticRegression())
        model.fit(X, y)
        joblib.dump(model, project / "model.joblib")
    finally:
        sys.path.remove(str(project))
        for name in (features, helpers):
            sys.modules.pop(name, None)
    X.assign(y=y).to_parquet(project / "train.parquet")
    expected = model.predict(X)
    args = ["register", str(project / "model.joblib"), "--name", "feat"]
    args += ["--train", str(project / "train.parquet"), "--target", "y"]

    code, _, err = cli(capsys, *args)
    assert code == 2
    assert f"it needs the module '{features}', which is not importable here" in err
    assert f"--code-path {features}.py" in err

    code, _, err = cli(capsys, *args, "--code-path", str(project / "nowhere.py"))
    assert code == 2 and "does not exist" in err

    try:
        code, out, err = cli(capsys, *args, "--code-path", str(project / f"{features}.py"))
        assert code == 0, err
        assert "Registered feat v1" in out
        assert str(project) not in sys.path  # the CLI put the folder back off the path
    finally:
        for name in (features, helpers):
            sys.modules.pop(name, None)

    client = Client(Settings()).open()
    try:
        manifest = client.registry.open_archive("feat", 1).manifest
        assert manifest.code_modules == sorted([features, helpers])  # helpers found by itself
        np.testing.assert_array_equal(client.load("feat", 1).predict(X), expected)
    finally:
        client.close()
