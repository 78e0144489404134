"""``parse_lock``, ``compare``, ``shipyard env check`` and ``env create``'s bad input (the
slow fresh-venv tests are in test_env_create.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli_support import cli
from deploy_support import Registered, register_with_lock
from shipyard.deploy import compare, create_env, model_lock, parse_lock
from shipyard.errors import InvalidInput
from shipyard.packaging import RUNTIME_LOCK, prepare_archive

LOCK = "# python 3.11.7 on Linux x86_64\nnumpy==2.1.0\nScikit_Learn==1.5.2\n\npandas==2.2.3\n"


def test_parse_lock_reads_the_header_and_the_pins_by_canonical_name() -> None:
    lock = parse_lock(LOCK, label="churn v1")
    assert (lock.python, lock.platform, lock.python_minor) == ("3.11.7", "Linux x86_64", "3.11")
    assert lock.pins["scikit-learn"] == ("Scikit_Learn", "1.5.2")
    assert lock.requirements(skip=("pandas",)) == ["numpy==2.1.0", "Scikit_Learn==1.5.2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("numpy==2.1.0\nnumpy>=2\n", "line 2 ('numpy>=2') is not 'name==version'"),
        ("# python 3.11.7\n\n", "pins no package"),
        ("-e git+https://x/y.git#egg=y\n", "line 1"),
    ],
)
def test_an_unreadable_lock_is_refused_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=r"requirements\.lock of churn v1") as info:
        parse_lock(text, label="churn v1")
    assert message in info.value.message


def test_compare_lists_missing_different_and_extra_packages() -> None:
    lock = parse_lock(LOCK, label="x")
    diff = compare(lock, "3.11.9", {"numpy": "2.1.0", "scikit-learn": "1.6.0", "rich": "13"})
    assert diff.missing == {"pandas": "2.2.3"}
    assert diff.different == {"Scikit_Learn": ("1.5.2", "1.6.0")}
    assert diff.extra == {"rich": "13"}
    assert not diff.python_differs and not diff.ok
    same = compare(lock, "3.12.1", {"numpy": "2.1.0", "scikit-learn": "1.5.2", "pandas": "2.2.3"})
    assert same.python_differs and not same.ok  # another minor version of Python
    assert compare(
        lock, "3.11.1", {"NumPy": "2.1.0", "scikit_learn": "1.5.2", "pandas": "2.2.3"}
    ).ok


def test_env_check_passes_in_the_environment_the_model_was_registered_in(
    registered: Registered, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "env", "check", "churn@staging")
    assert code == 0, err
    assert "matches the lock of churn v1" in out and "predates" not in out
    code, out, _ = cli(capsys, "env", "check", "churn:1", "--json")
    assert code == 0 and json.loads(out)["ok"] is True


def test_an_archive_without_a_runtime_lock_falls_back_to_the_full_lock(
    registered: Registered,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    training_data,  # type: ignore[no-untyped-def]
    fitted_pipeline,  # type: ignore[no-untyped-def]
) -> None:
    X_train = training_data[0]
    prepared = prepare_archive(fitted_pipeline, X_train=X_train, onnx=False)
    del prepared.members[RUNTIME_LOCK]  # as archives were made before it
    registered.client.registry.register(prepared, name="old", actor="admin")
    old = registered.client.registry.open_archive("old", 1)
    lock, member = model_lock(old)
    assert member == "requirements.lock" and "pytest" in lock.pins
    code, out, err = cli(capsys, "env", "check", "old:1")
    assert code == 0, err
    said = " ".join(out.split())
    assert "predates runtime.lock: using its requirements.lock" in said
    assert f"({len(lock.pins)} packages;" in said
    code, out, _ = cli(capsys, "env", "check", "old:1", "--json")  # the JSON stays JSON
    assert code == 0 and json.loads(out)["ok"] is True

    new, member = model_lock(registered.client.registry.open_archive("churn", 1))
    assert member == RUNTIME_LOCK and set(new.pins) < set(lock.pins)


def test_env_check_of_a_bare_venv_lists_what_is_missing_and_exits_1(
    registered: Registered, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    args = ("env", "check", "churn@staging", "--python", str(bare / "bin" / "python"))
    code, out, _ = cli(capsys, *args, "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    missing = {m["name"].lower() for m in report["missing"]}
    assert {"numpy", "pandas", "scikit-learn", "scipy", "joblib"} <= missing
    assert not missing & {"pytest", "mypy", "pyspark", "mlflow"}  # the runtime lock only
    code, out, err = cli(capsys, *args)
    assert code == 1
    assert "differs from the lock of churn v1" in err and "shipyard env create churn:1" in err
    assert "scikit-learn" in out.lower()


def test_env_create_refuses_bad_input_and_writes_nothing(
    registered: Registered,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    training_data,  # type: ignore[no-untyped-def]
    fitted_pipeline,  # type: ignore[no-untyped-def]
) -> None:
    target = tmp_path / "env"
    code, _, err = cli(capsys, "env", "create", "nosuch@production", str(target))
    assert code == 1 and "nosuch" in err and not target.exists()
    code, _, err = cli(capsys, "env", "create", "churn@nosuchalias", str(target))
    assert code == 1 and not target.exists()
    code, _, err = cli(capsys, "env", "create", "churn", "x", str(target))
    assert code == 2 and "Invalid version 'x'" in err

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    code, _, err = cli(capsys, "env", "create", "churn@staging", str(busy))
    assert code == 2 and "exists and is not empty" in err
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]

    X_train = training_data[0]
    register_with_lock(
        monkeypatch, registered.client, fitted_pipeline, X_train, "numpy>=2\n", "odd"
    )
    code, _, err = cli(capsys, "env", "create", "odd", "1", str(target))
    assert code == 2 and "runtime.lock of odd v1 is unreadable" in err
    assert not target.exists()


def test_an_interrupted_create_removes_the_venv_it_made(tmp_path: Path) -> None:
    lock = parse_lock(f"# python {sys.version.split()[0]}\nsix==1.16.0\n", label="t")
    target = tmp_path / "env"
    seen: list[str] = []
    current = [target]

    def interrupt(message: str, done: int, total: int) -> None:
        seen.append(message)
        if (current[0] / "bin" / "python").exists():
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        create_env(lock, target, label="t", progress=interrupt)
    assert len(seen) >= 2 and not target.exists()

    empty = tmp_path / "empty"  # a folder that was there stays, emptied again
    empty.mkdir()
    current[0] = empty
    with pytest.raises(KeyboardInterrupt):
        create_env(lock, empty, label="t", progress=interrupt)
    assert empty.is_dir() and not any(empty.iterdir())
