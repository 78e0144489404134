"""The model's runtime closure: the distributions it needs to load and predict, pinned.

``requirements.lock`` records the whole registering environment (a dev venv pins test
runners, notebooks, Spark...); ``runtime.lock`` pins only what the model needs: the
distributions providing the top-level modules its pickle refers to (``_code.scan_model``),
the flavor's frameworks and Shipyard's own requirements (its ``Requires-Dist`` without
extras), closed over ``Requires-Dist`` with environment markers evaluated here (the extras a
requirement asks for included), each at its installed version. Shipyard itself is left out:
``shipyard env create`` and the Dockerfile install it on their own. A requirement whose
marker is false here, or that is not installed, is not pinned.
"""

from __future__ import annotations

import importlib.metadata as md
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from shipyard.packaging._environment import lock_text

#: The archive member holding the runtime closure (``requirements.lock``'s format).
RUNTIME_LOCK = "runtime.lock"
_SHIPYARD = "shipyard"


@dataclass(frozen=True)
class _Installed:
    """One installed distribution, as its metadata's headers and files describe it."""

    name: str
    version: str
    requires: tuple[str, ...]
    #: The top-level modules it provides (``top_level.txt``, else its RECORD's ``.py`` files).
    tops: frozenset[str]


def runtime_lock(modules: Iterable[str], frameworks: Iterable[str]) -> str:
    """The runtime closure of a model referring to ``modules`` (dotted names) with the flavor's
    ``frameworks`` (distribution names), as lock text: a header, then ``name==version``."""
    installed = _installed()
    tops = {m.split(".")[0] for m in modules} - set(sys.stdlib_module_names)
    roots = {key for key, dist in installed.items() if dist.tops & tops}
    wanted = {root: set[str]() for root in roots | {canonicalize_name(f) for f in frameworks}}
    wanted.setdefault(_SHIPYARD, set())
    closed = _closure(wanted, installed)
    closed.discard(_SHIPYARD)
    return lock_text((installed[key].name, installed[key].version) for key in closed)


def _installed() -> dict[str, _Installed]:
    """Every distribution on ``sys.path`` by canonical name (the first one found wins), its
    METADATA's headers read by hand: the email parser ``importlib.metadata`` uses takes
    seconds over a large environment, mostly on long descriptions nobody needs here."""
    found: dict[str, _Installed] = {}
    for dist in md.distributions():
        headers = _headers(dist.read_text("METADATA") or dist.read_text("PKG-INFO") or "")
        name = (headers.get("name") or [""])[0]
        if not name or canonicalize_name(name) in found:
            continue
        top_level = dist.read_text("top_level.txt")
        if top_level is not None:
            tops = {line.strip() for line in top_level.splitlines() if line.strip()}
        else:
            tops = {_top(file.parts) for file in dist.files or () if file.suffix == ".py"}
        found[canonicalize_name(name)] = _Installed(
            name=name,
            version=(headers.get("version") or [dist.version])[0],
            requires=tuple(headers.get("requires-dist", ())),
            tops=frozenset(tops),
        )
    return found


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


def _closure(wanted: dict[str, set[str]], installed: dict[str, _Installed]) -> set[str]:
    """The canonical names of every installed distribution reachable from ``wanted``
    (canonical name -> extras asked for) over ``Requires-Dist``."""
    done: dict[str, set[str]] = {}
    queue = list(wanted.items())
    while queue:
        name, extras = queue.pop()
        new = extras - done[name] if name in done else extras | {""}
        dist = installed.get(name)
        if not new or dist is None:  # nothing new asked, or required but not installed here
            continue
        done.setdefault(name, set()).update(new)
        queue += _requirements(dist.requires, new)
    return set(done)


def _requirements(requires: Iterable[str], extras: set[str]) -> list[tuple[str, set[str]]]:
    """The ``Requires-Dist`` lines whose marker holds here for one of ``extras`` ("" is the
    base install), as (canonical name, extras asked for)."""
    out: list[tuple[str, set[str]]] = []
    for line in requires:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue  # metadata pip would not read either
        if req.marker is None or any(_holds(req, extra) for extra in extras):
            out.append((canonicalize_name(req.name), set(req.extras)))
    return out


def _holds(req: Requirement, extra: str) -> bool:
    assert req.marker is not None
    try:
        return req.marker.evaluate({"extra": extra})
    except UndefinedEnvironmentName:
        return False
