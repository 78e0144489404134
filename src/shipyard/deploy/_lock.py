"""An archive's lock, parsed, and an environment compared with it.

A lock is one header line ``# python 3.11.7 on Linux x86_64`` then one ``name==version``
per line. An archive has two: ``runtime.lock`` (``shipyard.packaging.runtime_lock``), what the
model needs to load and predict, which ``model_lock`` picks; and ``requirements.lock``
(``shipyard.packaging.requirements_lock``), every distribution of the registering
environment, the fallback for archives made before the runtime lock existed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput
from shipyard.packaging import RUNTIME_LOCK

if TYPE_CHECKING:
    from shipyard.packaging import Archive

#: The lock of every archive: the training environment's distributions, all of them.
FULL_LOCK = "requirements.lock"

_HEADER = re.compile(r"^#\s*python\s+(\S+)(?:\s+on\s+(.+))?$")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)$")


def canonical(name: str) -> str:
    """A distribution name as pip compares it (PEP 503): ``Scikit_Learn`` -> ``scikit-learn``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Lock:
    """A parsed lock: the Python and platform it was made on and its pins by canonical name."""

    python: str | None
    platform: str | None
    pins: dict[str, tuple[str, str]] = field(repr=False)  # canonical -> (name, version)

    @property
    def python_minor(self) -> str | None:
        """``"3.11"`` for a lock made on Python 3.11.7."""
        if self.python is None:
            return None
        return ".".join(self.python.split(".")[:2])

    def requirements(self, *, skip: tuple[str, ...] = ()) -> list[str]:
        """The pins as pip requirements (``name==version``), without the ``skip`` names."""
        drop = {canonical(s) for s in skip}
        return [f"{n}=={v}" for key, (n, v) in sorted(self.pins.items()) if key not in drop]


def model_lock(archive: Archive) -> tuple[Lock, str]:
    """The lock to install and check ``archive``'s model against, and its member's name:
    ``runtime.lock`` when the archive has one, else (an older archive) ``requirements.lock``."""
    label = f"{archive.manifest.name} v{archive.manifest.version}"
    member = RUNTIME_LOCK if RUNTIME_LOCK in archive.members else FULL_LOCK
    raw = archive.members.get(member)
    if raw is None:
        raise InvalidInput(f"The archive of {label} has no {FULL_LOCK}.")
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"The {member} of {label} is not UTF-8 text.") from exc
    return parse_lock(text, label=label, member=member), member


def parse_lock(text: str, *, label: str, member: str = FULL_LOCK) -> Lock:
    """Parse a lock (``member`` names it in errors); a line that is neither a comment nor
    ``name==version`` is refused.

    >>> parse_lock("# python 3.11.7 on Linux x86_64\\nnumpy==2.1.0\\n", label="x").python_minor
    '3.11'
    """
    python = platform = None
    pins: dict[str, tuple[str, str]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            header = _HEADER.match(line)
            if header and python is None:
                python, platform = header.group(1), header.group(2)
            continue
        pin = _PIN.match(line)
        if pin is None:
            raise InvalidInput(
                f"The {member} of {label} is unreadable: line {number} ({line[:80]!r}) "
                "is not 'name==version'."
            )
        pins[canonical(pin.group(1))] = (pin.group(1), pin.group(2))
    if not pins:
        raise InvalidInput(f"The {member} of {label} pins no package.")
    return Lock(python=python, platform=platform, pins=pins)


def clean_env() -> dict[str, str]:
    """This process's environment without what would make another interpreter see this
    one's packages (``PYTHONPATH`` and friends)."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    return {k: v for k, v in os.environ.items() if k not in drop}


# Run by ``--python`` interpreters: what is installed there, as JSON.
_PROBE = (
    "import importlib.metadata as m, json, platform; "
    "print(json.dumps({'python': platform.python_version(), 'packages': "
    "{d.metadata['Name']: d.version for d in m.distributions() if d.metadata['Name']}}))"
)


def installed(python: str | None = None) -> tuple[str, dict[str, str]]:
    """The Python version and installed distributions (name -> version) of ``python`` (an
    interpreter's path; ``None``: the running one)."""
    if python is None:
        import importlib.metadata as md
        import platform

        packages = {d.metadata["Name"]: d.version for d in md.distributions() if d.metadata["Name"]}
        return platform.python_version(), packages
    try:
        out = subprocess.run(
            [python, "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env=clean_env(),
        ).stdout
        data: dict[str, Any] = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise InvalidInput(f"Cannot run the Python interpreter {python!r}: {exc}.") from exc
    return str(data["python"]), dict(data["packages"])


@dataclass(frozen=True)
class EnvDiff:
    """An environment against a lock: what is missing, what differs, what is extra."""

    python: str
    lock_python: str | None
    missing: dict[str, str]  # name -> locked version
    different: dict[str, tuple[str, str]]  # name -> (locked, installed)
    extra: dict[str, str]  # name -> installed version (not a failure)

    @property
    def python_differs(self) -> bool:
        """The minor versions differ (3.11 vs 3.12); patch releases do not count."""
        if self.lock_python is None:
            return False
        return self.python.split(".")[:2] != self.lock_python.split(".")[:2]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.different or self.python_differs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "python": {"lock": self.lock_python, "running": self.python},
            "missing": [{"name": n, "lock": v} for n, v in sorted(self.missing.items())],
            "different": [
                {"name": n, "lock": lv, "installed": iv}
                for n, (lv, iv) in sorted(self.different.items())
            ],
            "extra": [{"name": n, "installed": v} for n, v in sorted(self.extra.items())],
        }


def compare(lock: Lock, python: str, packages: dict[str, str]) -> EnvDiff:
    """Compare installed ``packages`` (running ``python``) with ``lock``."""
    have = {canonical(n): (n, v) for n, v in packages.items()}
    missing = {n: v for key, (n, v) in lock.pins.items() if key not in have}
    different = {
        n: (v, have[key][1])
        for key, (n, v) in lock.pins.items()
        if key in have and have[key][1] != v
    }
    extra = {n: v for key, (n, v) in have.items() if key not in lock.pins}
    return EnvDiff(python, lock.python, missing, different, extra)
