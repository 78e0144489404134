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

import sys
from collections.abc import Iterable, Mapping

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from shipyard.packaging._environment import lock_text
from shipyard.packaging._installed import Installed, installed

#: The archive member holding the runtime closure (``requirements.lock``'s format).
RUNTIME_LOCK = "runtime.lock"
_SHIPYARD = "shipyard"


def runtime_lock(modules: Iterable[str], frameworks: Iterable[str]) -> str:
    """The runtime closure of a model referring to ``modules`` (dotted names) with the flavor's
    ``frameworks`` (distribution names), as lock text: a header, then ``name==version``."""
    found = installed()
    tops = {m.split(".")[0] for m in modules} - set(sys.stdlib_module_names)
    roots = {key for key, dist in found.items() if dist.tops & tops}
    wanted = {root: set[str]() for root in roots | {canonicalize_name(f) for f in frameworks}}
    wanted.setdefault(_SHIPYARD, set())
    closed = _closure(wanted, found)
    closed.discard(_SHIPYARD)
    return lock_text((found[key].name, found[key].version) for key in closed)


def _closure(wanted: dict[str, set[str]], found: Mapping[str, Installed]) -> set[str]:
    """The canonical names of every installed distribution reachable from ``wanted``
    (canonical name -> extras asked for) over ``Requires-Dist``."""
    done: dict[str, set[str]] = {}
    queue = list(wanted.items())
    while queue:
        name, extras = queue.pop()
        new = extras - done[name] if name in done else extras | {""}
        dist = found.get(name)
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
