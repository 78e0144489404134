"""Runs record params, metrics, status, git state, environment and datasets."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard import Client
from shipyard.errors import InvalidInput
from shipyard.tracking import active_run, git_state


def test_run_records_everything(client_for: Callable[[str], Client], training_data) -> None:  # type: ignore[no-untyped-def]
    alice = client_for("alice")
    X, y, _, _ = training_data
    with alice.start_run(model="churn", params={"C": 0.5, "penalty": "l2"}) as run:
        assert active_run() is run
        run.log_param("seed", 7)
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            run.log_metric("loss", loss, step=step)
        run.log_metrics({"auc": 0.91})
        fp = run.log_dataset("train", X.assign(churn=y), target="churn")
    assert active_run() is None
    row = alice.tracker.get(run.id)
    assert repr(row) == f"Run(id='{run.id}', model_name='churn', status='finished', user='alice')"
    assert row.status == "finished" and row.user == "alice" and row.model_name == "churn"
    assert row.params == {"C": 0.5, "penalty": "l2", "seed": 7}
    assert row.ended_at is not None and row.ended_at >= row.started_at
    assert alice.tracker.metrics(run.id) == {
        "loss": [(0, 0.9), (1, 0.5), (2, 0.3)],
        "auc": [(0, 0.91)],
    }
    env = row.environment
    assert env["python"].count(".") == 2
    assert {"numpy", "pandas", "scikit-learn"} <= set(env["packages"])
    (ds,) = alice.tracker.datasets(run.id)
    assert ds.name == "train" and ds.n_rows == len(X) and ds.content_hash == fp.content_hash
    assert ds.fingerprint["target"] == "churn"


def test_failed_block_marks_the_run_failed_with_the_message(client_for) -> None:  # type: ignore[no-untyped-def]
    alice = client_for("alice")
    with pytest.raises(ZeroDivisionError), alice.start_run(model="churn") as run:
        1 / 0  # noqa: B018
    row = alice.tracker.get(run.id)
    assert row.status == "failed"
    assert row.error == "ZeroDivisionError: division by zero"


def test_bad_metric_and_params_are_refused(client_for) -> None:  # type: ignore[no-untyped-def]
    alice = client_for("alice")
    with alice.start_run(model="churn") as run:
        with pytest.raises(InvalidInput, match="must be a number"):
            run.log_metric("auc", "high")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="step"):
            run.log_metric("auc", 0.5, step=-1)
        with pytest.raises(InvalidInput, match="mapping"):
            run.log_params(["C", 1])  # type: ignore[arg-type]
    assert alice.tracker.metrics(run.id) == {}


def test_artifacts_are_stored_with_checksums(client_for, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    alice = client_for("alice")
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with alice.start_run() as run:
        digest = run.log_artifact(f)
        with pytest.raises(InvalidInput, match="no such file"):
            run.log_artifact(tmp_path / "missing.txt")
    (art,) = alice.tracker.artifacts(run.id)
    assert art.path == "notes.txt" and art.sha256 == digest and art.size == 5
    assert alice.store.artifacts.get(art.key) == b"hello"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_git_state_commit_dirty_flag_and_diff_hash(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(
        repo,
        "-c",
        "user.email=a@b",
        "-c",
        "user.name=a",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
    )
    (repo / "train.py").write_text("print(1)\n")
    _git(repo, "add", "train.py")
    _git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "train")
    clean = git_state(repo)
    assert clean["commit"] == _git(repo, "rev-parse", "HEAD")
    assert clean["dirty"] is False and clean["diff_sha256"] is None
    (repo / "train.py").write_text("print(2)\n")
    dirty = git_state(repo)
    assert dirty["dirty"] is True and dirty["diff_sha256"].startswith("sha256:")
    (repo / "train.py").write_text("print(3)\n")
    assert git_state(repo)["diff_sha256"] != dirty["diff_sha256"]
    outside = tmp_path / "plain"
    outside.mkdir()
    assert git_state(outside)["available"] is False


def test_register_in_a_run_carries_lineage(client_for, fitted_pipeline, training_data) -> None:  # type: ignore[no-untyped-def]
    alice = client_for("alice")
    X, y, Xe, ye = training_data
    with alice.start_run(model="churn", git_path=Path(__file__).parent) as run:
        mv = run.register(fitted_pipeline, X_train=X, y_train=y, X_eval=Xe, y_eval=ye, onnx=False)
    assert mv.run_id == run.id
    manifest = alice.load("churn", version=mv.version).manifest
    assert manifest.lineage.run_id == run.id
    assert [d["name"] for d in manifest.lineage.datasets] == ["train"]
    assert manifest.lineage.git == alice.tracker.get(run.id).git
