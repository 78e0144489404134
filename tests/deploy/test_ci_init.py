"""``shipyard init --ci github|gitlab``: the pipeline parses, passes the CI system's own schema
(check-jsonschema's vendored copies, offline), and its steps do what they say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli_support import cli
from deploy_support import Registered

SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}
FILES = {"github": ".github/workflows/shipyard.yml", "gitlab": ".gitlab-ci.yml"}


def _check_jsonschema(ci: str, path: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [str(tool), "--builtin-schema", SCHEMAS[ci], str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def _steps(ci: str, doc: dict) -> list[str]:  # type: ignore[type-arg]
    if ci == "github":
        return [s.get("run", s.get("uses", "")) for s in doc["jobs"]["register"]["steps"]]
    return list(doc["shipyard"]["script"])


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_init_ci_writes_a_pipeline_its_ci_system_accepts(
    ci: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("print('training')\n")
    code, out, err = cli(capsys, "init", "--ci", ci, "--train", "train.py", "--model", "churn")
    assert code == 0, err
    path = tmp_path / FILES[ci]
    assert f"Wrote {FILES[ci]}." in out
    doc = yaml.safe_load(path.read_text())
    steps = _steps(ci, doc)
    assert any("pip install -r requirements.txt" in s for s in steps)
    assert "python train.py" in steps
    assert any(s.startswith("shipyard validate churn") for s in steps)
    checked = _check_jsonschema(ci, path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not (tmp_path / ".shipyard").exists()  # --ci writes the pipeline, not a store

    code, _, err = cli(capsys, "init", "--ci", ci, "--train", "train.py")
    assert code == 1 and "--force" in err
    code, _, err = cli(capsys, "init", "--ci", ci, "--train", "train.py", "--force")
    assert code == 0, err
    assert not any("shipyard validate" in s for s in _steps(ci, yaml.safe_load(path.read_text())))


def test_without_train_the_register_step_fails_saying_what_to_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli(capsys, "init", "--ci", "gitlab")
    assert code == 0 and "--train train.py" in out
    path = tmp_path / ".gitlab-ci.yml"
    assert _check_jsonschema("gitlab", path).returncode == 0
    script = yaml.safe_load(path.read_text())["shipyard"]["script"]
    register = script[-1]
    run = subprocess.run(["sh", "-c", register], capture_output=True, text=True, check=False)
    assert run.returncode == 1
    assert "shipyard init --ci gitlab --train train.py" in run.stderr


def test_init_ci_refuses_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "init", "--ci", "jenkins")
    assert code == 2 and "--ci must be github or gitlab" in err
    code, _, err = cli(capsys, "init", "--ci", "github", "--train", "nosuch.py")
    assert code == 2 and "no training script 'nosuch.py'" in err
    assert not (tmp_path / ".github").exists()


def test_the_validate_step_finds_the_newest_version(registered: Registered, tmp_path: Path) -> None:
    from shipyard.deploy import ci_pipeline

    registered.client.register(
        registered.client.load("churn:1").model,
        name="churn",
        X_train=registered.rows,
        onnx=False,
    )
    _, text = ci_pipeline("gitlab", train="train.py", model="churn")
    validate = yaml.safe_load(text)["shipyard"]["script"][-1]
    newest = validate.split('"$(', 1)[1].rsplit(')"', 1)[0]
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ["PATH"]}
    env["PYTHONPATH"] = str(Path(__file__).parents[2] / "src")
    run = subprocess.run(["sh", "-c", newest], capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "2"
