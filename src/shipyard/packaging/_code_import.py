"""Putting an archive's code in place before its model is unpickled, in any folder.

Each distinct set of ``code/`` members is imported under a package of its own,
``_shipyard_code_<hash of the code>``: ``features.py`` of one version becomes
``_shipyard_code_1a2b....features`` and that of another version (with a different
``features.py``) ``_shipyard_code_9f8e....features``, so two versions served by one process
never share (or clobber) a module, and nothing the user imported under the plain name is
touched. Two pieces make the plain names in the code and in the pickle reach those modules:

* inside the archive's modules, ``import features`` / ``from helpers import f`` (also inside
  functions, at predict time) go through a module-level ``__import__`` that maps the archive's
  top-level names to its package (``importlib.import_module("features")`` is not mapped);
* while the pickle is read (``code_in_place``), a finder at the front of ``sys.meta_path``
  answers the plain names with the archive's modules, and any module of the same name already
  imported is set aside; afterwards ``sys.modules`` is put back as it was. Unpickling under
  the lock therefore works for joblib's, pickle's and cloudpickle's unpicklers alike.

The finder of the ``_shipyard_code_*`` packages stays on ``sys.meta_path`` (the import system
is process-wide, so this one object is too): predictions may import lazily.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from shipyard.packaging._code import CODE_DIR

PREFIX = "_shipyard_code_"


class _Bundle:
    """One archive's code: its package name, sources by relative path, top-level names."""

    def __init__(self, package: str, sources: dict[str, bytes]) -> None:
        self.package = package
        self.sources = sources
        self.tops = frozenset(path.split("/")[0].removesuffix(".py") for path in sources)
        namespace = dict(vars(builtins))
        namespace["__import__"] = self._import
        self.builtins = namespace

    def _import(
        self,
        name: str,
        globals: Mapping[str, Any] | None = None,
        locals: Mapping[str, Any] | None = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> ModuleType:
        top = name.partition(".")[0]
        if level == 0 and top in self.tops:
            module = builtins.__import__(f"{self.package}.{name}", globals, locals, fromlist, 0)
            return module if fromlist else sys.modules[f"{self.package}.{top}"]
        return builtins.__import__(name, globals, locals, fromlist, level)

    def find(self, rel: str) -> tuple[str | None, bool] | None:
        """(member path or ``None`` for a folder without ``__init__.py``, is a package)."""
        key = rel.replace(".", "/")
        if f"{key}/__init__.py" in self.sources:
            return f"{key}/__init__.py", True
        if f"{key}.py" in self.sources:
            return f"{key}.py", False
        if any(path.startswith(key + "/") for path in self.sources):
            return None, True
        return None


class _SourceLoader(importlib.abc.Loader):
    def __init__(self, bundle: _Bundle, path: str | None) -> None:
        self.bundle = bundle
        self.path = path

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        module.__dict__["__builtins__"] = self.bundle.builtins
        if self.path is None:
            return
        module.__file__ = f"{self.bundle.package}/{self.path}"
        code = compile(self.bundle.sources[self.path], module.__file__, "exec", dont_inherit=True)
        exec(code, module.__dict__)  # the archive's own, checksum-verified code

    def get_source(self, fullname: str) -> str | None:
        if self.path is None:
            return None
        return self.bundle.sources[self.path].decode("utf-8", errors="replace")


class _CodeFinder(importlib.abc.MetaPathFinder):
    """Serves ``_shipyard_code_<hash>[.module]`` from the registered bundles."""

    def __init__(self) -> None:
        self.bundles: dict[str, _Bundle] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, rel = fullname.partition(".")
        bundle = self.bundles.get(package)
        if bundle is None:
            return None
        if not rel:
            return importlib.util.spec_from_loader(
                fullname, _SourceLoader(bundle, None), is_package=True
            )
        found = bundle.find(rel)
        if found is None:
            return None
        member, is_package = found
        return importlib.util.spec_from_loader(
            fullname, _SourceLoader(bundle, member), is_package=is_package
        )


class _AliasLoader(importlib.abc.Loader):
    """Answers a plain name (``features``) with the archive's module of that name."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        # The import system stamped the alias's spec on the module; give it its own back.
        module.__spec__ = sys.modules[self.target].__spec__


class _AliasFinder(importlib.abc.MetaPathFinder):
    def __init__(self, bundle: _Bundle) -> None:
        self.bundle = bundle

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] not in self.bundle.tops:
            return None
        found = self.bundle.find(fullname)
        if found is None:
            return None
        return importlib.machinery.ModuleSpec(
            fullname, _AliasLoader(f"{self.bundle.package}.{fullname}"), is_package=found[1]
        )


_FINDER = _CodeFinder()
#: Held while plain names point at one archive's modules (one unpickling at a time).
_LOCK = threading.RLock()


def code_package(members: Mapping[str, bytes]) -> str | None:
    """The package an archive's code is imported under (``None``: it has no code).

    Named after the code itself, so versions with identical code share one import.
    """
    paths = sorted(path for path in members if path.startswith(CODE_DIR))
    if not paths:
        return None
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.encode() + b"\0" + hashlib.sha256(members[path]).digest())
    return f"{PREFIX}{digest.hexdigest()[:16]}"


def _bundle(members: Mapping[str, bytes]) -> _Bundle | None:
    package = code_package(members)
    if package is None:
        return None
    with _LOCK:
        bundle = _FINDER.bundles.get(package)
        if bundle is None:
            sources = {p[len(CODE_DIR) :]: d for p, d in members.items() if p.startswith(CODE_DIR)}
            bundle = _FINDER.bundles[package] = _Bundle(package, sources)
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)
    return bundle


@contextmanager
def code_in_place(members: Mapping[str, bytes]) -> Iterator[str | None]:
    """While open, the archive's modules answer to their plain names (for unpickling).

    Yields the package the code lives under (``None`` for an archive without code: then
    nothing changes).
    """
    bundle = _bundle(members)
    if bundle is None:
        yield None
        return

    def ours(name: str) -> bool:
        return name.partition(".")[0] in bundle.tops

    with _LOCK:
        aside = {name: sys.modules.pop(name) for name in list(sys.modules) if ours(name)}
        alias = _AliasFinder(bundle)
        sys.meta_path.insert(0, alias)
        try:
            yield bundle.package
        finally:
            sys.meta_path.remove(alias)
            for name in [name for name in sys.modules if ours(name)]:
                del sys.modules[name]
            sys.modules.update(aside)
