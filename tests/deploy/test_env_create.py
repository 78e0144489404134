"""``shipyard env create`` for real: one fresh venv (no system site-packages) from the lock of
a model registered here, made once per session (minutes: every pin of this environment goes
through pip as configured here), then scoring in it gives this environment's predictions.

The model is the issue's hard case: a pipeline with the data scientist's own transformer, a
class in their ``features.py``, registered from their project folder; the venv scores it from
another folder, with neither that folder nor the module anywhere on its path."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from shipyard.client import Client
from shipyard.deploy._venv import _Pip
from shipyard.settings import Settings

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class MadeEnv:
    path: Path
    env: dict[str, str]  # SHIPYARD_* of the store the model is in
    code: int
    out: str
    err: str
    seconds: float


def _store_env(home: Path) -> dict[str, str]:
    return {
        "SHIPYARD_HOME": str(home),
        "SHIPYARD_DB_URL": f"sqlite:///{home / 'shipyard.db'}",
        "SHIPYARD_CONFIG": str(home / "shipyard.toml"),
        "SHIPYARD_USER": "admin",
    }


_FEATURES = """
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class IncomePerYear(BaseEstimator, TransformerMixin):
    \"\"\"The data scientist's own feature: income per year of tenure.\"\"\"

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X.assign(income_per_year=X["income"] / (X["tenure"] + 1.0))
"""


def _custom_pipeline(project: Path, X_train: pd.DataFrame, y_train: pd.Series) -> object:
    """A pipeline whose first step is a class of ``project/features.py``, imported from there
    as the user's notebook would, then forgotten by this process."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    (project / "features.py").write_text(_FEATURES)
    sys.path.insert(0, str(project))
    try:
        import features  # type: ignore[import-not-found]

        numeric = ["age", "income", "tenure", "income_per_year"]
        prep = ColumnTransformer(
            [
                ("num", StandardScaler(), numeric),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
            ]
        )
        pipe = Pipeline(
            [("own", features.IncomePerYear()), ("prep", prep), ("clf", LogisticRegression())]
        )
        return pipe.fit(X_train, y_train)
    finally:
        sys.path.remove(str(project))


@pytest.fixture(scope="session")
def made_env(
    tmp_path_factory: pytest.TempPathFactory,
    training_data,  # type: ignore[no-untyped-def]
) -> Iterator[MadeEnv]:
    home = tmp_path_factory.mktemp("deploy-env-home")
    store_env = _store_env(home)
    settings = Settings(home=home, db_url=store_env["SHIPYARD_DB_URL"], user="admin")
    c = Client(settings).open()
    X_train, y_train, _, _ = training_data
    model = _custom_pipeline(tmp_path_factory.mktemp("project"), X_train, y_train)
    version = c.register(model, name="churn", X_train=X_train, y_train=y_train, onnx=False)
    sys.modules.pop("features", None)
    assert version.version == 1
    manifest = c.load("churn", 1).manifest
    assert manifest.code_modules == ["features"] and "code/features.py" in manifest.members
    c.promote("churn", 1, to="staging")
    c.close()
    target = tmp_path_factory.mktemp("deploy-env") / "venv"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", "env", "create", "churn@staging", str(target)],
        env={**os.environ, **store_env},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    print(f"\nshipyard env create: {seconds:.0f} s")  # the figure the README quotes
    yield MadeEnv(target, store_env, done.returncode, done.stdout, done.stderr, seconds)


def _score(shipyard: list[str], env: dict[str, str], cwd: Path, rows: Path) -> pd.DataFrame:
    out = cwd / "scored.parquet"
    done = subprocess.run(
        [*shipyard, "score", "churn@staging", str(rows), str(out)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return pd.read_parquet(out).drop(columns=["prediction_id"])


def test_env_create_installs_the_whole_lock_and_shipyard(made_env: MadeEnv) -> None:
    assert made_env.code == 0, made_env.err
    said = " ".join(made_env.out.split())
    assert "Created" in said and "Python 3." in said and "locked packages" in said
    assert "could not be" not in made_env.out + made_env.err
    cfg = (made_env.path / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in cfg
    assert (made_env.path / "bin" / "shipyard").is_file()


def test_a_model_scored_in_the_new_env_gives_identical_predictions(
    made_env: MadeEnv,
    training_data,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    assert made_env.code == 0, made_env.err
    rows = tmp_path / "rows.parquet"
    training_data[2].reset_index(drop=True).to_parquet(rows)
    here_dir, there_dir = tmp_path / "here", tmp_path / "elsewhere"
    here_dir.mkdir()
    there_dir.mkdir()
    here = _score(
        [sys.executable, "-m", "shipyard"], {**os.environ, **made_env.env}, here_dir, rows
    )
    # The new venv alone: no PYTHONPATH, another working folder.
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    there = _score(
        [str(made_env.path / "bin" / "shipyard")], {**clean, **made_env.env}, there_dir, rows
    )
    assert len(here) == len(rows_frame := pd.read_parquet(rows)) and len(rows_frame) > 100
    pd.testing.assert_frame_equal(here, there, check_exact=True)


def test_env_check_of_the_new_env_finds_no_difference(made_env: MadeEnv) -> None:
    assert made_env.code == 0, made_env.err
    python = str(made_env.path / "bin" / "python")
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", "env", "check", "churn@staging", "--python", python],
        env={**os.environ, **made_env.env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "matches the lock of churn v1" in done.stdout


def test_pins_pip_cannot_get_are_named_with_the_reason(made_env: MadeEnv) -> None:
    python = str(made_env.path / "bin" / "python")
    pip = _Pip(python, sys.version.split()[0], lambda _m, _d, _t: None)
    unavailable = pip.install_pins(["six==0.0.1", "pywin32==306"])
    reasons = {u.name: u.reason for u in unavailable}
    assert reasons["six"].startswith("no such version on the package index"), reasons
    assert reasons["pywin32"].startswith("no wheel for this platform"), reasons
