"""``create_env``: a fresh virtual environment from an archive's ``requirements.lock``.

``python -m venv`` (no system site-packages) with the lock's Python minor when one is on
``PATH``, then pip, configured as pip is on this machine (index, find-links, constraints),
installs every pin without dependencies (the lock is the whole closure), then Shipyard itself
from where the running one came from (``ShipyardSource``). A pin pip cannot get is set aside
with the reason and the rest is installed; anything else that fails removes what was made.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from shipyard.deploy._lock import Lock, canonical, clean_env
from shipyard.deploy._source import ShipyardSource, shipyard_source
from shipyard.errors import InvalidInput, MissingDependency

#: ``progress(message, done, total)``: called as pip collects each pin and at each stage.
Progress = Callable[[str, int, int], None]

_NOT_FOUND = re.compile(
    r"Could not find a version that satisfies the requirement ([A-Za-z0-9._-]+)==(\S+) "
    r"\(from versions: ([^)]*)\)"
)
_COLLECTING = re.compile(r"^Collecting ([A-Za-z0-9._-]+)")
_AVAILABLE = re.compile(r"Available versions: (.*)")
# Wheels for these platforms answer "does this version exist elsewhere?" (no wheel here).
_OTHER_PLATFORMS = (
    "manylinux2014_x86_64",
    "manylinux2014_aarch64",
    "musllinux_1_1_x86_64",
    "win_amd64",
    "macosx_11_0_arm64",
    "macosx_10_12_x86_64",
)


@dataclass(frozen=True)
class Unavailable:
    """A pin pip could not install, and why."""

    name: str
    version: str
    reason: str


@dataclass(frozen=True)
class EnvReport:
    """What ``create_env`` made: the venv, its Python, what was installed and what was not."""

    path: Path
    python: str
    note: str | None
    installed: int
    unavailable: tuple[Unavailable, ...]
    shipyard: str
    seconds: float

    @property
    def complete(self) -> bool:
        return not self.unavailable


def create_env(
    lock: Lock,
    target: Path,
    *,
    label: str,
    source: ShipyardSource | None = None,
    progress: Progress | None = None,
) -> EnvReport:
    """Create a venv in ``target`` (absent or empty) with ``lock``'s pins and Shipyard.

    ``label`` names the model version in messages. Pins pip cannot get are listed in the
    report (``complete`` is false); any other failure, or an interrupt, removes the venv.

    >>> report = create_env(lock, Path("env"), label="churn v3")  # doctest: +SKIP
    >>> report.complete, report.unavailable  # doctest: +SKIP
    (True, ())
    """
    source = source or shipyard_source()
    report = progress or (lambda _m, _d, _t: None)
    target = target.absolute()
    made_dir = _check_target(target)
    started = time.perf_counter()
    try:
        interpreter, note = _interpreter(lock)
        report(f"Creating the virtual environment in {target}", 0, 1)
        _run([interpreter, "-m", "venv", str(target)], what="python -m venv")
        python = str(target / "bin" / "python")
        version = _run(
            [python, "-c", "import platform; print(platform.python_version())"],
            what="the new environment's Python",
        ).strip()
        pip = _Pip(python, version, report)
        requirements = lock.requirements(skip=("shipyard",))
        unavailable = pip.install_pins(requirements)
        report(f"Installing Shipyard from {source.describe()}", 0, 1)
        failure = pip.install_shipyard(source)
        if failure is not None:
            unavailable.append(Unavailable("shipyard", source.version, failure))
    except BaseException:
        _remove(target, made_dir)
        raise
    return EnvReport(
        path=target,
        python=version,
        note=note,
        installed=len(requirements) - len([u for u in unavailable if u.name != "shipyard"]),
        unavailable=tuple(unavailable),
        shipyard=source.describe(),
        seconds=time.perf_counter() - started,
    )


def _check_target(target: Path) -> bool:
    """Refuse a target that is a file or a non-empty folder; true when it must be made."""
    if target.is_dir():
        if any(target.iterdir()):
            raise InvalidInput(
                f"'{target}' exists and is not empty: choose a new folder or empty this one."
            )
        return False
    if target.exists():
        raise InvalidInput(f"'{target}' exists and is not a folder: choose a new folder.")
    return True


def _remove(target: Path, made_dir: bool) -> None:
    """Remove what ``create_env`` made: the folder, or only its contents if it was there."""
    if made_dir:
        shutil.rmtree(target, ignore_errors=True)
        return
    for child in target.iterdir() if target.is_dir() else ():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _interpreter(lock: Lock) -> tuple[str, str | None]:
    """The interpreter for ``python -m venv`` and a note when it is not the lock's minor."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    minor = lock.python_minor
    if minor is None:
        return sys.executable, f"The lock records no Python version; using Python {here}."
    if minor == here:
        return sys.executable, None
    found = shutil.which(f"python{minor}")
    if found:
        return found, None
    return sys.executable, (
        f"The lock was made with Python {lock.python} but there is no python{minor} on PATH: "
        f"the environment uses Python {platform.python_version()} (install python{minor} "
        "for an exact match)."
    )


def _run(cmd: Sequence[str], *, what: str) -> str:
    try:
        done = subprocess.run(
            list(cmd), capture_output=True, text=True, env=clean_env(), check=False
        )
    except OSError as exc:
        raise MissingDependency(f"Cannot run {what} ({cmd[0]}): {exc}.") from exc
    if done.returncode != 0:
        raise MissingDependency(f"{what} failed: {_last_error(done.stdout + done.stderr)}")
    return done.stdout


def _last_error(output: str) -> str:
    """pip's last ``ERROR:`` line (or last non-empty line), for a one-sentence reason."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["no output"])[-1]


class _Pip:
    """pip in the new environment, streaming its output into ``progress``."""

    def __init__(self, python: str, version: str, progress: Progress) -> None:
        self.python = python
        self.minor = ".".join(version.split(".")[:2])
        self.progress = progress

    def run(
        self, args: Sequence[str], *, total: int = 0, collected: set[str] | None = None
    ) -> tuple[int, str]:
        cmd = [self.python, "-m", "pip", *args]
        lines: list[str] = []
        with subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**clean_env(), "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"},
        ) as proc:
            assert proc.stdout is not None
            try:
                lines += self._follow(proc.stdout, total, collected)
            except BaseException:
                proc.kill()  # an interrupt stops pip too, before the venv is removed
                raise
            code = proc.wait()
        return code, "".join(lines)

    def _follow(self, stdout: IO[str], total: int, collected: set[str] | None) -> list[str]:
        """pip's output lines, reporting progress as it collects and installs."""
        lines: list[str] = []
        for line in stdout:
            lines.append(line)
            found = _COLLECTING.match(line)
            if found and collected is not None:
                collected.add(canonical(found.group(1)))
                self.progress(f"Collecting {found.group(1)}", len(collected), total)
            elif line.startswith("Installing collected packages"):
                self.progress("Installing", len(collected or ()), total)
        return lines

    def install_pins(self, requirements: list[str]) -> list[Unavailable]:
        """Install ``requirements`` (``name==version``, no dependencies), setting aside each
        pin pip cannot find; a failure pip does not pin on one requirement (a build) is
        narrowed down by installing the rest one at a time."""
        total = len(requirements)
        remaining = list(requirements)
        unavailable: list[Unavailable] = []
        collected: set[str] = set()
        install = ["install", "--no-deps", "--progress-bar", "off"]
        while remaining:
            code, out = self.run([*install, *remaining], total=total, collected=collected)
            if code == 0:
                return unavailable
            missing = _NOT_FOUND.search(out)
            if missing is None:
                break
            name, version, listed = missing.groups()
            unavailable.append(Unavailable(name, version, self.why(name, version, listed)))
            gone = canonical(name)
            remaining = [r for r in remaining if canonical(r.split("==")[0]) != gone]
            collected.add(gone)
        for requirement in remaining:
            code, out = self.run([*install, requirement], total=total, collected=collected)
            if code != 0:
                name, _, version = requirement.partition("==")
                unavailable.append(Unavailable(name, version, _last_error(out)))
        return unavailable

    def install_shipyard(self, source: ShipyardSource) -> str | None:
        """Install Shipyard (editable from a checkout); the reason when it fails."""
        args = ["install", "--progress-bar", "off"]
        args += ["-e", source.requirement] if source.checkout else [source.requirement]
        code, out = self.run(args)
        return None if code == 0 else _last_error(out)

    def why(self, name: str, version: str, listed: str) -> str:
        """Why pip found no ``name==version`` here: no wheel for this platform (it exists for
        others), no such version (the index has others) or not on the index at all."""
        here = [v.strip() for v in listed.split(",") if v.strip() and v.strip() != "none"]
        code, out = self.run(
            [
                "index",
                "versions",
                name,
                "--only-binary=:all:",
                f"--python-version={self.minor}",
                *(f"--platform={p}" for p in _OTHER_PLATFORMS),
            ]
        )
        found = _AVAILABLE.search(out) if code == 0 else None
        elsewhere = {v.strip() for v in found.group(1).split(",")} if found else set()
        where = f"Python {self.minor} on {platform.system()} {platform.machine()}"
        if version in elsewhere:
            return f"no wheel for this platform ({where}); {version} has wheels for others"
        if here:
            newest = ", ".join(reversed(here[-3:]))
            return f"no such version on the package index for {where} (newest: {newest})"
        return f"not on the package index for {where}"
