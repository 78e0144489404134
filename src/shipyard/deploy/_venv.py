"""``create_env``: a fresh virtual environment from an archive's ``requirements.lock``.

``python -m venv`` (no system site-packages) with the lock's Python minor when one is on
``PATH``, then an installer, configured as pip is on this machine (index, find-links,
constraints), installs every pin without dependencies (the lock is the whole closure), then
Shipyard itself from where the running one came from (``ShipyardSource``). The installer is
pip, or uv (``_uv.py``: seconds instead of minutes) when it is there and pip's configuration
translates to it. A pin that cannot be had is set aside with the reason, found by pip for
both, and the rest is installed; anything else that fails removes what was made.
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

from shipyard.deploy import _uv
from shipyard.deploy._lock import Lock, canonical, clean_env
from shipyard.deploy._source import ShipyardSource, shipyard_source
from shipyard.errors import InvalidInput, MissingDependency

#: ``progress(message, done, total)``: called as pip collects (uv installs) each pin and at
#: each stage.
Progress = Callable[[str, int, int], None]

#: ``create_env``'s ``installer``: ``auto`` is uv when ``find_uv`` finds it and pip's
#: configuration translates to it, else pip.
INSTALLERS = ("auto", "pip", "uv")

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
    """What ``create_env`` made: the venv, its Python, what was installed and what was not,
    with which installer (``pip`` or ``uv``) and notes on the choices made (its Python, the
    installer when ``auto`` or uv could not do everything)."""

    path: Path
    python: str
    notes: tuple[str, ...]
    installed: int
    unavailable: tuple[Unavailable, ...]
    shipyard: str
    seconds: float
    installer: str

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
    installer: str = "auto",
) -> EnvReport:
    """Create a venv in ``target`` (absent or empty) with ``lock``'s pins and Shipyard.

    ``label`` names the model version in messages; ``installer`` is one of ``INSTALLERS``.
    Pins that cannot be had are listed in the report (``complete`` is false); any other
    failure, or an interrupt, removes the venv.

    >>> report = create_env(lock, Path("env"), label="churn v3")  # doctest: +SKIP
    >>> report.complete, report.unavailable  # doctest: +SKIP
    (True, ())
    """
    if installer not in INSTALLERS:
        raise InvalidInput(
            f"Invalid installer {installer!r}: choose one of {', '.join(INSTALLERS)}."
        )
    uv_binary = None if installer == "pip" else _uv.find_uv()
    if installer == "uv" and uv_binary is None:
        raise MissingDependency(
            "The installer uv is neither beside this Python nor on PATH: install it "
            "('pip install uv') or choose the installer pip."
        )
    source = source or shipyard_source()
    report = progress or (lambda _m, _d, _t: None)
    target = target.absolute()
    made_dir = _check_target(target)
    started = time.perf_counter()
    try:
        interpreter, note = _interpreter(lock)
        notes = [note] if note else []
        report(f"Creating the virtual environment in {target}", 0, 1)
        _run([interpreter, "-m", "venv", str(target)], what="python -m venv")
        python = str(target / "bin" / "python")
        version = _run(
            [python, "-c", "import platform; print(platform.python_version())"],
            what="the new environment's Python",
        ).strip()
        pip = _Pip(python, version, report)
        uv = _uv_for(uv_binary, pip, strict=installer == "uv", notes=notes)
        requirements = lock.requirements(skip=("shipyard",))
        if uv is None:
            unavailable = pip.install_pins(requirements)
        else:
            unavailable = _install_with_uv(uv, pip, requirements, notes)
        report(f"Installing Shipyard from {source.describe()}", 0, 1)
        failure = _install_shipyard(uv, pip, source, notes)
        if failure is not None:
            unavailable.append(Unavailable("shipyard", source.version, failure))
    except BaseException:
        _remove(target, made_dir)
        raise
    return EnvReport(
        path=target,
        python=version,
        notes=tuple(notes),
        installed=len(requirements) - len([u for u in unavailable if u.name != "shipyard"]),
        unavailable=tuple(unavailable),
        shipyard=source.describe(),
        seconds=time.perf_counter() - started,
        installer="pip" if uv is None else "uv",
    )


def _uv_for(binary: str | None, pip: _Pip, *, strict: bool, notes: list[str]) -> _uv.Uv | None:
    """uv with pip's settings translated, or ``None`` (pip installs): no uv, or (a note
    says why; ``strict``, the installer asked for: an error) settings uv cannot take."""
    if binary is None:
        return None
    try:
        settings = _uv.translate(_uv.pip_settings(pip.python, pip.env()))
    except _uv.Untranslatable as exc:
        if strict:
            raise InvalidInput(f"uv cannot install as pip would: {exc}. Use pip.") from exc
        notes.append(f"Installed with pip, not uv: {exc}.")
        return None
    return _uv.Uv(binary, pip.python, settings, pip.progress)


def _install_with_uv(
    uv: _uv.Uv, pip: _Pip, requirements: list[str], notes: list[str]
) -> list[Unavailable]:
    """Install ``requirements`` with uv, setting aside each pin it says it cannot satisfy
    and pip confirms is not to be had here (with pip's reason, as on the pip path). Any
    other failure hands what is left to pip, which narrows it down as it does alone."""
    total = len(requirements)
    remaining = list(requirements)
    unavailable: list[Unavailable] = []
    while remaining:
        pip.progress(f"Installing {len(remaining)} packages with uv", 0, total)
        code, out = uv.install(["--no-deps", *remaining], total=total)
        if code == 0:
            return unavailable
        missing = _missing(out, remaining, pip)
        if missing is None:  # not a pin that is not to be had: pip narrows it down
            reason = _uv.last_error(out)
            notes.append(f"uv could not install the lock ({reason}): pip installed what it could.")
            return unavailable + pip.install_pins(remaining)
        unavailable.append(missing)
        gone = canonical(missing.name)
        remaining = [r for r in remaining if canonical(r.split("==")[0]) != gone]
    return unavailable


def _missing(out: str, remaining: list[str], pip: _Pip) -> Unavailable | None:
    """The pin uv says it cannot satisfy, if pip confirms it is not to be had here, with
    pip's reason; ``None`` when uv failed otherwise (a constraint, a build, the network)."""
    said = _uv.unsatisfiable(out)
    if said is None:
        return None
    pins = {canonical(n): (n, v) for n, _, v in (r.partition("==") for r in remaining)}
    name, version = pins.get(canonical(said[0]), ("", ""))
    if version != said[1]:
        return None
    here = pip.versions_here(name)
    if version in here:
        return None
    return Unavailable(name, version, pip.why(name, version, here))


def _install_shipyard(
    uv: _uv.Uv | None, pip: _Pip, source: ShipyardSource, notes: list[str]
) -> str | None:
    """Install Shipyard with uv, or pip if uv is not used or fails; pip's reason if it fails."""
    if uv is not None:
        args = ["-e", source.requirement] if source.checkout else [source.requirement]
        code, out = uv.install(args)
        if code == 0:
            return None
        notes.append(f"uv could not install Shipyard ({_uv.last_error(out)}): pip tried.")
    return pip.install_shipyard(source)


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

    def env(self) -> dict[str, str]:
        """pip's environment: this one without another interpreter's paths, never asking."""
        return {**clean_env(), "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}

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
            env=self.env(),
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
            here = [v.strip() for v in listed.split(",") if v.strip() and v.strip() != "none"]
            unavailable.append(Unavailable(name, version, self.why(name, version, here)))
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

    def versions_here(self, name: str) -> list[str]:
        """The versions of ``name`` pip can install here, oldest first (as pip lists them
        when a pin is not found)."""
        code, out = self.run(["index", "versions", name])
        found = _AVAILABLE.search(out) if code == 0 else None
        return list(reversed([v.strip() for v in found.group(1).split(",")])) if found else []

    def why(self, name: str, version: str, here: list[str]) -> str:
        """Why pip finds no ``name==version`` here (``here``: the versions it finds, oldest
        first): no wheel for this platform (it exists for others), no such version (the
        index has others) or not on the index at all."""
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
