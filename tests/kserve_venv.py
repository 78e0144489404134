"""A venv holding KServe's Python client, made once and reused (the ``kserve_python`` fixture).

``kserve`` pins pandas below 3 and cannot be installed beside Shipyard, so it lives in a venv
of its own, made once (``pip install kserve``, about 90 s here) under
``~/.cache/shipyard-tests`` and reused; the tests run driver scripts with its Python. Where
that venv cannot be made the tests using it are skipped, except under CI (``CI=true``), where
they fail. Shared by the serving tests of KServe's REST and gRPC clients and the deploy tests,
which read ``shipyard deploy kserve``'s files into KServe's generated models.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

KSERVE = "kserve==0.21.0"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shipyard-tests" / f"kserve-venv-{KSERVE.split('==')[1]}"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"KServe's client venv cannot be made: {reason}")
    pytest.skip(f"KServe's client venv cannot be made: {reason}")


@pytest.fixture(scope="session")
def kserve_python() -> Path:
    """The Python of a venv holding ``kserve`` (made on first use, then reused)."""
    venv = _cache_dir()
    python = venv / "bin" / "python"
    if (venv / "READY").is_file():
        return python
    building = venv.with_name(f"{venv.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(building)],
        [str(building / "bin" / "python"), "-m", "pip", "install", "-q", KSERVE],
        [str(building / "bin" / "python"), "-c", "import kserve"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            _unavailable(f"'{' '.join(step[-2:])}' failed: {last[:300]}")
    (building / "READY").write_text(KSERVE + "\n")
    try:
        building.rename(venv)
    except OSError:  # another session made it meanwhile
        shutil.rmtree(building, ignore_errors=True)
    # Only bin/python is used: a symlink, so the venv works under its new name (its pip
    # script, which names the old path, is not needed).
    return python


def run_driver(python: Path, driver: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Run a driver script with KServe's ``python``; its JSON report (the last stdout line)."""
    done = subprocess.run(
        [str(python), str(driver), json.dumps(spec)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report
