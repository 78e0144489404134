"""The distributions installed on ``sys.path``, read once per state of the environment.

Every registration pins its environment twice (``requirements.lock``, ``runtime.lock``), and
reading some 200 distributions' metadata took ~0.6 s each time, most of a registration. The
scan is kept while ``sys.path`` and the modification times of its folders stay the same;
installing or removing a distribution adds or removes a folder in one of them (a new
``.dist-info``, a ``.pth`` file), so a notebook that ``pip install``s between two
registrations gets a fresh scan.
"""

from __future__ import annotations

import csv
import importlib.metadata as md
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from packaging.utils import canonicalize_name


@dataclass(frozen=True)
class Installed:
    """One installed distribution, as its metadata's headers and files describe it."""

    name: str
    version: str
    requires: tuple[str, ...]
    #: The top-level modules it provides (``top_level.txt``, else its RECORD's ``.py`` files).
    tops: frozenset[str]


def installed() -> Mapping[str, Installed]:
    """Every distribution on ``sys.path`` by canonical name (the first one found wins, as
    for imports).

    >>> installed()["packaging"].name
    'packaging'
    """
    return _scan(_fingerprint())


def _fingerprint() -> tuple[tuple[str, int | None], ...]:
    """``sys.path`` with each folder's modification time (``None``: not a folder)."""
    state: list[tuple[str, int | None]] = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            state.append((entry, None))
    return tuple(state)


@lru_cache(maxsize=1)
def _scan(_fingerprint: tuple[tuple[str, int | None], ...]) -> Mapping[str, Installed]:
    """The distributions as ``installed`` describes them, METADATA's headers read by hand:
    the email parser ``importlib.metadata`` uses takes seconds over a large environment,
    mostly on long descriptions nobody needs here."""
    found: dict[str, Installed] = {}
    for dist in md.distributions():
        headers = _headers(dist.read_text("METADATA") or dist.read_text("PKG-INFO") or "")
        name = (headers.get("name") or [""])[0]
        if not name or canonicalize_name(name) in found:
            continue
        found[canonicalize_name(name)] = Installed(
            name=name,
            version=(headers.get("version") or [dist.version])[0],
            requires=tuple(headers.get("requires-dist", ())),
            tops=frozenset(_tops(dist)),
        )
    return found


def _tops(dist: md.Distribution) -> set[str]:
    """The top-level modules of ``dist``: its ``top_level.txt``, else the first part of each
    ``.py`` file its RECORD lists (read as text: ``dist.files`` makes a path object of each of
    the tens of thousands of files in an environment), else of its other file lists."""
    top_level = dist.read_text("top_level.txt")
    if top_level is not None:
        return {line.strip() for line in top_level.splitlines() if line.strip()}
    record = dist.read_text("RECORD")
    if record is not None:
        paths = (row[0] for row in csv.reader(record.splitlines()) if row)
        return {_top(tuple(path.split("/"))) for path in paths if path.endswith(".py")}
    return {_top(file.parts) for file in dist.files or () if file.suffix == ".py"}


def _headers(text: str) -> dict[str, list[str]]:
    """The header fields of a METADATA file (lower-cased names), up to the first empty line;
    a continuation line (leading whitespace, as a multi-line License has) extends the field
    before it."""
    fields: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in text.splitlines():
        if not line:
            break
        if line[0] in " \t" and last is not None:
            last[-1] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = fields.setdefault(key.strip().lower(), [])
            last.append(value.strip())
    return fields


def _top(parts: tuple[str, ...]) -> str:
    """The top-level module a file of a distribution belongs to (``pkg/x.py`` -> ``pkg``)."""
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")
