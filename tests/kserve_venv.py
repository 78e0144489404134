"""A venv holding KServe's Python client, made once and reused (the ``kserve_python`` fixture).

``kserve`` pins pandas below 3 and cannot be installed beside Shipyard, so it lives in a venv
of its own under ``~/.cache/shipyard-tests``, made once and reused; the tests run driver
scripts with its Python. It is made with uv when uv is there (the dev extra installs it:
about 3 s here, with pip's configuration given to uv as ``shipyard env create`` gives it),
else, or if uv fails, with pip (35-55 s); one process makes it while the others (pytest-xdist's
workers) wait for it. Where that venv cannot be made the tests using it are skipped, except
under CI (``CI=true``), where they fail. Shared by the serving tests of KServe's REST and gRPC
clients and the deploy tests, which read ``shipyard deploy kserve``'s files into KServe's
generated models.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shipyard.deploy._lock import clean_env
from shipyard.deploy._uv import Untranslatable, Uv, find_uv, pip_settings, translate

KSERVE = "kserve==0.21.0"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shipyard-tests" / f"kserve-venv-{KSERVE.split('==')[1]}"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"KServe's client venv cannot be made: {reason}")
    pytest.skip(f"KServe's client venv cannot be made: {reason}")


def _step(cmd: list[str], env: dict[str, str] | None = None) -> str | None:
    """Run one step of making the venv; its last error line when it fails."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"'{cmd[0]}' failed: {exc}"
    if done.returncode == 0:
        return None
    last = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["?"])[-1]
    return f"'{' '.join(cmd[-2:])}' failed: {last[:300]}"


def _with_uv(venv: Path) -> str | None:
    """Make ``venv`` with uv (``None``: made); why not (no uv, or uv failed)."""
    uv = find_uv()
    if uv is None:
        return "uv is not installed"
    try:
        settings = translate(pip_settings(sys.executable, clean_env()))
    except Untranslatable as exc:
        return str(exc)
    failed = _step([uv, "venv", "--no-config", "--python", sys.executable, str(venv)])
    if failed:
        return failed
    code, out = Uv(uv, str(venv / "bin" / "python"), settings, lambda *_: None).install([KSERVE])
    return None if code == 0 else f"uv pip install {KSERVE} failed: {out.strip()[-300:]}"


def _with_pip(venv: Path) -> str | None:
    """Make ``venv`` with ``python -m venv`` and pip (``None``: made); why not."""
    python = str(venv / "bin" / "python")
    for step in (
        [sys.executable, "-m", "venv", str(venv)],
        [python, "-m", "pip", "install", "-q", KSERVE],
    ):
        failed = _step(step)
        if failed:
            return failed
    return None


def make_venv(venv: Path) -> str | None:
    """Make a venv with ``kserve`` at ``venv`` (absent): uv, else pip; why not (``None``:
    made and ``import kserve`` works)."""
    failed = _with_uv(venv)
    if failed:
        shutil.rmtree(venv, ignore_errors=True)
        failed = _with_pip(venv)
    return failed or _step([str(venv / "bin" / "python"), "-c", "import kserve"])


@pytest.fixture(scope="session")
def kserve_python() -> Path:
    """The Python of a venv holding ``kserve`` (made on first use, then reused)."""
    venv = _cache_dir()
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    # One maker at a time: another worker waits here, then finds the venv READY.
    with (venv.parent / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / "READY").is_file():
            return python
        building = venv.with_name(f"{venv.name}.building-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        failed = make_venv(building)
        if failed:
            shutil.rmtree(building, ignore_errors=True)
            _unavailable(failed)
        (building / "READY").write_text(KSERVE + "\n")
        shutil.rmtree(venv, ignore_errors=True)  # a venv left without READY
        building.rename(venv)
    # Only bin/python is used: a symlink, so the venv works under its new name (its scripts,
    # which name the old path, are not needed).
    return python


def run_driver(python: Path, driver: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Run a driver script with KServe's ``python``; its JSON report (the last stdout line)."""
    done = subprocess.run(
        [str(python), str(driver), json.dumps(spec)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report
