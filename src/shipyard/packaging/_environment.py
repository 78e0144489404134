"""What produced a model: the git state of the working tree and the Python environment.

Runs record it (``shipyard.tracking``) and archives pin it (``requirements.lock``, the
manifest's frameworks), so it lives here, below tracking.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import platform
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shipyard.packaging._installed import installed

# Distributions whose versions change a model's behaviour; recorded on every run.
KEY_PACKAGES = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "joblib",
    "xgboost",
    "lightgbm",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "pyarrow",
    "shipyard",
)


def git_state(path: Path | None = None) -> dict[str, Any]:
    """Commit, branch, dirty flag and a hash of the uncommitted changes of ``path``'s repo.

    Returns ``{"available": False}`` outside a repository or without git. The diff hash covers
    ``git diff HEAD`` (staged and unstaged) and the names of untracked files, so two runs
    with the same hash ran the same code.
    """
    cwd = str(path or Path.cwd())

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=10, check=True
        ).stdout
        return out.decode(errors="replace")

    try:
        commit = git("rev-parse", "HEAD").strip()
    except (OSError, subprocess.SubprocessError):
        return {"available": False}
    try:
        branch = git("rev-parse", "--abbrev-ref", "HEAD").strip()
        status = git("status", "--porcelain")
        diff = git("diff", "HEAD", "--binary")
        untracked = git("ls-files", "--others", "--exclude-standard")
        root = git("rev-parse", "--show-toplevel").strip()
    except (OSError, subprocess.SubprocessError):
        return {"available": True, "commit": commit}
    dirty = bool(status.strip())
    diff_hash = None
    if dirty:
        diff_hash = "sha256:" + hashlib.sha256((diff + "\0" + untracked).encode()).hexdigest()
    return {
        "available": True,
        "commit": commit,
        "branch": branch,
        "dirty": dirty,
        "diff_sha256": diff_hash,
        "root": root,
    }


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of the packages that matter (and ``extra``), skipping absent ones."""
    versions: dict[str, str] = {}
    for name in (*KEY_PACKAGES, *extra):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return versions


def environment(extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Python version, platform and key package versions."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": package_versions(extra),
    }


def requirements_lock() -> str:
    """Every installed distribution pinned (``name==version``), sorted: the archive's env lock."""
    return lock_text((dist.name, dist.version) for dist in installed().values())


def lock_text(pairs: Iterable[tuple[str, str]]) -> str:
    """A lock of ``(name, version)`` pairs: a header naming this Python and platform, then one
    ``name==version`` per distribution, sorted by name."""
    pins = {}
    for name, version in pairs:
        if name:
            pins[name.lower()] = f"{name}=={version}"
    header = f"# python {platform.python_version()} on {platform.system()} {platform.machine()}\n"
    return header + "\n".join(pins[k] for k in sorted(pins)) + "\n"
