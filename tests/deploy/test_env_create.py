"""``shipyard env create`` for real: one fresh venv (no system site-packages) from the lock of
a model registered here, made once per session with the default installer (uv where it is
installed, as the dev extra does: seconds; pip: a minute or more), then scoring in it gives
this environment's predictions. Each installer also makes a venv from a small lock with pins
that cannot be had, named with the same reasons, and uv hands pip what it cannot do.

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

from cli_support import cli
from shipyard.client import Client
from shipyard.deploy import EnvReport, ShipyardSource, _uv, create_env, parse_lock
from shipyard.deploy._uv import PYPI, Untranslatable, find_uv, pip_settings, translate
from shipyard.errors import InvalidInput, MissingDependency
from shipyard.settings import Settings

pytestmark = pytest.mark.slow

#: The installer ``env create`` picks by default here (uv beside this Python or on PATH).
DEFAULT_INSTALLER = "uv" if find_uv() else "pip"


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
    assert f"installed with {DEFAULT_INSTALLER}" in said and "Note:" not in said
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


def _small_env(
    tmp_path: Path, installer: str, pins: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[EnvReport, list[str]]:
    """``create_env`` of a lock of ``pins`` with ``installer``, and "Shipyard" a tiny
    project of ``tmp_path`` (editable, as from a checkout); the report and progress seen."""
    if installer == "uv" and find_uv() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("uv is not installed (the dev extra installs it)")
        pytest.skip("uv is not installed")
    project = tmp_path / "tiny"
    (project / "src" / "tinyship").mkdir(parents=True)
    (project / "src" / "tinyship" / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=69"]\nbuild-backend = "setuptools.build_meta"'
        '\n[project]\nname = "tinyship"\nversion = "0.1.0"\n'
    )
    lock = parse_lock(f"# python {sys.version.split()[0]}\n{pins}", label="t")
    seen: list[str] = []
    report = create_env(
        lock,
        tmp_path / "env",
        label="t",
        source=ShipyardSource(version="0.1.0", checkout=project),
        progress=lambda message, _d, _t: seen.append(message),
        installer=installer,
    )
    python = str(report.path / "bin" / "python")
    done = subprocess.run([python, "-c", "import tinyship"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return report, seen


_MISSING = "idna==3.21\nsix==0.0.1\npywin32==306\ntyping_extensions==4.16.0\n"


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_pins_that_cannot_be_had_are_named_with_the_reason_by_either_installer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installer: str
) -> None:
    if installer == "pip":
        # auto with a pip setting uv has no equivalent for: pip installs, and says why
        monkeypatch.setenv("PIP_PREFER_BINARY", "1")
    report, seen = _small_env(
        tmp_path, "auto" if installer == "pip" else "uv", _MISSING, monkeypatch
    )
    assert report.installer == installer and report.installed == 2
    reasons = {u.name: u.reason for u in report.unavailable}
    assert sorted(reasons) == ["pywin32", "six"]
    assert reasons["six"].startswith("no such version on the package index"), reasons
    assert reasons["pywin32"].startswith("no wheel for this platform"), reasons
    assert "Installing Shipyard from the source checkout " + str(tmp_path / "tiny") in seen
    if installer == "uv":
        assert report.notes == () and "Installed idna" in seen
    else:
        assert "Collecting idna" in seen
        if find_uv() is not None:
            (note,) = report.notes
            assert note.startswith("Installed with pip, not uv: pip is configured with ")
            assert "--prefer-binary" in note


def test_uv_hands_pip_what_it_cannot_install_and_keeps_pip_s_constraints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip's constraint (idna<3) reaches uv: without it uv would install idna 3.21
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("idna<3\n")
    monkeypatch.setenv("PIP_CONSTRAINT", str(constraints))
    report, _ = _small_env(tmp_path, "uv", "idna==3.21\ntyping_extensions==4.16.0\n", monkeypatch)
    assert report.installer == "uv" and report.installed == 1
    (note,) = report.notes
    assert note.startswith("uv could not install the lock (") and note.endswith(
        "pip installed what it could."
    )
    [(name, version, reason)] = [(u.name, u.version, u.reason) for u in report.unavailable]
    assert (name, version) == ("idna", "3.21") and reason, reason


def test_pip_s_configuration_is_read_from_pip_and_given_to_uv(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PIP_CONFIG_FILE": os.devnull,  # no config file: only these variables
        "PIP_FIND_LINKS": "/opt/wheels",
        "PIP_EXTRA_INDEX_URL": "file:///opt/a/simple file:///opt/b/simple",
        "PIP_TIMEOUT": "180",
    }
    settings = pip_settings(sys.executable, env)
    assert settings == {
        "find_links": ("--find-links", ["/opt/wheels"]),
        "extra_index_urls": ("--extra-index-url", ["file:///opt/a/simple", "file:///opt/b/simple"]),
        "timeout": ("--timeout", 180.0),
    }
    more = {
        "constraints": ("--constraint", ["/etc/c.txt"]),
        "cert": ("--cert", "/etc/ca.pem"),
        "no_index": ("--no-index", 1),
        "format_control": ("--no-binary", {"no_binary": [":all:"], "only_binary": ["numpy"]}),
        "build_isolation": ("--no-build-isolation", 0),
        "disable_pip_version_check": ("--disable-pip-version-check", 1),  # how, not what
    }
    uv = translate(settings | more)
    assert uv.args == (
        *("--index-url", PYPI, "--index-strategy", "unsafe-best-match"),
        "--no-build-isolation",
        *("--constraints", "/etc/c.txt"),
        *("--extra-index-url", "file:///opt/a/simple", "--extra-index-url", "file:///opt/b/simple"),
        *("--find-links", "/opt/wheels"),
        *("--no-binary", ":all:", "--only-binary", "numpy"),
        "--no-index",
    )
    assert uv.env == {"SSL_CERT_FILE": "/etc/ca.pem", "UV_HTTP_TIMEOUT": "180"}
    with pytest.raises(Untranslatable, match="--prefer-binary=1"):
        translate({"prefer_binary": ("--prefer-binary", 1)})


def test_an_installer_that_is_not_there_or_unknown_is_refused_before_anything_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = parse_lock("six==1.17.0\n", label="t")
    target = tmp_path / "env"
    monkeypatch.setattr(_uv, "find_uv", lambda: None)
    with pytest.raises(MissingDependency, match="uv is neither beside this Python nor on PATH"):
        create_env(lock, target, label="t", installer="uv")
    with pytest.raises(InvalidInput, match="Invalid installer 'conda'"):
        create_env(lock, target, label="t", installer="conda")
    assert not target.exists()
    code, _, err = cli(
        capsys, "env", "create", "churn@staging", str(target), "--installer", "conda"
    )
    assert code == 2 and "--installer" in err and not target.exists()
