"""The model's own code, found at registration so that it travels in the archive.

A pickle names the classes and functions it needs by module (``features.AddRatio``), so a
model whose transformer lives in the data scientist's ``features.py`` loads only where
``features`` can be imported. ``collect_code`` walks the model the way pickle will (a
``cloudpickle.Pickler`` whose ``reducer_override`` notes every class, function and module it
meets), keeps the modules that are neither the standard library nor an installed package
(nor Shipyard), follows their ``import`` statements to the user's other modules, and returns
their source as archive members ``code/<module path>.py`` (a package's ``__init__.py`` as
``code/<package>/__init__.py``). ``code_paths`` adds files and package folders by hand.

Classes and functions that cannot be imported by name (defined in ``__main__``, i.e. in a
notebook or a script, lambdas, classes defined inside functions) are pickled *by value* with
cloudpickle instead (``_pickled.pickle_members``): the model registers and loads anywhere,
with the caveat that by-value code needs the Python minor version it was pickled with.
Refusing them would be the stricter choice, but a notebook's transformer is the commonest
custom code there is, and the register-time load check (``_load_check``) proves the pickle
loads in a fresh process before anything is written. Putting the code in place at load
time is ``_code_import``'s job.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import os
import site
import sys
import sysconfig
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput

#: Member path prefix of the model's code in an archive.
CODE_DIR = "code/"
#: More source than this is not "the model's own code" but a library outside site-packages.
MAX_CODE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class ModelScan:
    """What pickling a model refers to: modules by name, and what must go by value."""

    #: Every module a class, function or module object of the model comes from.
    modules: frozenset[str]
    #: ``module.qualname`` of classes/functions that cannot be imported by name.
    by_value: tuple[str, ...]


@dataclass
class ModelCode:
    """The model's own code as archive members, and what the load check needs to know."""

    #: ``code/...`` path -> source bytes.
    members: dict[str, bytes] = field(default_factory=dict)
    #: Dotted names of the modules stored (packages included), sorted.
    modules: list[str] = field(default_factory=list)
    #: ``module.qualname`` of what was pickled by value (``__main__`` classes, lambdas).
    by_value: list[str] = field(default_factory=list)
    #: The folders the modules were imported from (kept off the load check's ``sys.path``).
    roots: list[Path] = field(default_factory=list)
    #: Installed modules the model refers to (the load check imports them up front).
    libraries: list[str] = field(default_factory=list)
    #: The user's modules it refers to whose file is gone (it will not load elsewhere).
    missing: list[str] = field(default_factory=list)

    @property
    def needed(self) -> bool:
        """True when the model needs more than installed packages to load."""
        return bool(self.members or self.by_value or self.missing)


class _Sink:
    """A file that keeps nothing: the scan only wants the pickler's visits."""

    def write(self, data: Any) -> int:
        return memoryview(data).nbytes  # large arrays arrive as PickleBuffer, not bytes


def _importable_by_name(obj: Any) -> bool:
    """Whether pickle could find ``obj`` again as ``sys.modules[obj.__module__].<qualname>``."""
    module_name = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module_name or not qualname or module_name == "__main__":
        return False
    module = sys.modules.get(module_name)
    if module is None:
        return False
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            return False
    return found is obj


def scan_model(model: Any) -> ModelScan:
    """Pickle ``model`` into nothing, noting the modules and by-value objects it refers to.

    Raises ``InvalidInput`` when the model cannot be pickled at all (an open file, a lock...).
    """
    import cloudpickle

    modules: set[str] = set()
    by_value: set[str] = set()

    class Recorder(cloudpickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, types.ModuleType):
                modules.add(obj.__name__)
            elif isinstance(obj, type | types.FunctionType | types.BuiltinFunctionType):
                if _importable_by_name(obj):
                    modules.add(obj.__module__)
                else:
                    by_value.add(f"{obj.__module__}.{obj.__qualname__}")
            return super().reducer_override(obj)

    try:
        # Out-of-band buffers (the callback keeps none): large arrays are not even copied.
        Recorder(_Sink(), protocol=5, buffer_callback=lambda _: None).dump(model)
    except Exception as exc:  # pickling raises PicklingError, TypeError, AttributeError...
        raise InvalidInput(
            f"The {type(model).__name__} cannot be pickled ({type(exc).__name__}: "
            f"{str(exc)[:200]}): remove what holds a file, lock or connection before "
            "registering it."
        ) from exc
    return ModelScan(frozenset(modules), tuple(sorted(by_value)))


# -- where a module comes from -------------------------------------------------------------


@cache
def _library_dirs() -> tuple[str, ...]:
    """Folders whose modules are the standard library or installed packages."""
    dirs = set(site.getsitepackages())
    user_site = site.getusersitepackages()
    if user_site:
        dirs.add(user_site)
    paths = sysconfig.get_paths()
    dirs.update(paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib"))
    # Shipyard itself is present wherever its archives load, even from a source checkout.
    dirs.add(str(Path(__file__).resolve().parents[1]))
    return tuple(os.path.join(os.path.realpath(d), "") for d in dirs if d)


def _is_user_file(path: str) -> bool:
    real = os.path.realpath(path)
    if any(part in ("site-packages", "dist-packages") for part in Path(real).parts):
        return False
    return not real.startswith(_library_dirs())


@dataclass(frozen=True)
class _Found:
    name: str
    path: Path
    is_package: bool
    #: False when the module was imported from a file that is gone since.
    present: bool = True

    @property
    def member(self) -> str:
        parts = self.name.split(".")
        return CODE_DIR + "/".join(parts) + ("/__init__.py" if self.is_package else ".py")

    @property
    def root(self) -> Path:
        """The ``sys.path`` folder this module was imported from."""
        up = self.name.count(".") + (1 if self.is_package else 0)
        return self.path.parents[up]


def _locate(name: str) -> tuple[str | None, bool] | None:
    """(source file or ``None``, is a package) of module ``name``, importing nothing new."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None), hasattr(module, "__path__")
    parent, _, _ = name.rpartition(".")
    path: list[str] | None = None
    if parent:
        parent_module = sys.modules.get(parent)
        if parent_module is not None:
            path = list(getattr(parent_module, "__path__", None) or [])
        else:
            parent_spec = _spec(parent, None)
            if parent_spec is None or parent_spec.submodule_search_locations is None:
                return None
            path = list(parent_spec.submodule_search_locations)
        if not path:
            return None
    spec = _spec(name, path)
    if spec is None:
        return None
    origin = spec.origin if spec.has_location else None
    return origin, spec.submodule_search_locations is not None


def _spec(name: str, path: list[str] | None) -> importlib.machinery.ModuleSpec | None:
    try:
        return importlib.machinery.PathFinder.find_spec(name, path)
    except Exception:  # e.g. KeyError for a namespace package whose parent is not imported
        return None


def _user_module(name: str) -> _Found | None:
    """Where ``name``'s source is, if it is the user's own module (else ``None``)."""
    if name == "__main__" or name.split(".")[0] == "shipyard":
        return None
    located = _locate(name)
    if located is None:
        return None
    origin, is_package = located
    if origin is None or not _is_user_file(origin):
        return None  # built-in, frozen, a namespace package, or installed
    if not os.path.exists(origin):
        return _Found(name, Path(origin), is_package, present=False)
    if not origin.endswith(".py"):
        raise InvalidInput(
            f"The model needs the module '{name}' ({origin}), which is compiled rather than "
            "Python source, so Shipyard cannot package it: install it as a package so "
            "requirements.lock pins it."
        )
    return _Found(name, Path(origin), is_package)


def _imports(found: _Found, source: bytes) -> set[str]:
    """Modules ``found``'s source imports (every prefix of a dotted name, and ``from a import
    b``'s ``a.b`` in case ``b`` is a module)."""
    try:
        tree = ast.parse(source, filename=str(found.path))
    except (SyntaxError, ValueError):
        return set()
    package = found.name if found.is_package else found.name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.update(_prefixes(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                try:
                    base = importlib.util.resolve_name("." * node.level + base, package)
                except (ImportError, ValueError):
                    continue
            if not base:
                continue
            names.update(_prefixes(base))
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


# -- code_paths ------------------------------------------------------------------------------


def _from_paths(code_paths: Iterable[str | os.PathLike[str]]) -> list[_Found]:
    """The modules of the files and package folders the user named."""
    found: list[_Found] = []
    for raw in code_paths:
        path = Path(raw)
        if not path.exists():
            raise InvalidInput(
                f"The code path '{raw}' does not exist: pass a .py file or a package folder."
            )
        path = path.resolve()
        if path.is_file():
            if path.suffix != ".py":
                raise InvalidInput(
                    f"The code path '{raw}' is not a Python source file (.py) or a folder."
                )
            found.append(_Found(_module_name([path.stem], raw), path, False))
            continue
        package = _module_name([path.name], raw)
        for file in sorted(path.rglob("*.py")):
            rel = file.relative_to(path).with_suffix("").parts
            if any(p.startswith(".") or p == "__pycache__" for p in rel):
                continue
            if not all(p.isidentifier() for p in rel):
                continue  # e.g. 'setup-old.py': not importable, so nothing can need it
            is_package = rel[-1] == "__init__"
            parts = [package, *(rel[:-1] if is_package else rel)]
            found.append(_Found(".".join(parts), file, is_package))
    return found


def _module_name(parts: Sequence[str], raw: object) -> str:
    name = ".".join(parts)
    if not all(p.isidentifier() for p in parts):
        raise InvalidInput(
            f"The code path '{raw}' does not name an importable module ('{name}' is not a "
            "Python identifier): rename it, or pass the package folder that holds it."
        )
    return name


# -- putting it together -----------------------------------------------------------------------


def collect_code(model: Any, code_paths: Iterable[str | os.PathLike[str]] = ()) -> ModelCode:
    """The user's modules ``model`` needs (transitively) plus ``code_paths``, as members.

    Raises ``InvalidInput`` for a code path that does not exist, two files claiming one module
    name, a compiled user module, or more than ``MAX_CODE_BYTES`` of source.
    """
    explicit = _from_paths(code_paths)
    scan = scan_model(model)
    chosen: dict[str, _Found] = {}
    sources: dict[str, bytes] = {}
    queue: list[_Found] = list(explicit)
    libraries: set[str] = set()
    for name in sorted(scan.modules):
        found = _user_module(name)
        if found is not None:
            queue.append(found)
        elif name != "__main__":
            libraries.add(name)
    seen: set[str] = set()
    missing: set[str] = set()
    while queue:
        found = queue.pop()
        if not found.present:
            missing.add(found.name)
            continue
        if found.name in chosen:
            if chosen[found.name].path != found.path:
                raise InvalidInput(
                    f"Two files would be the model's module '{found.name}': "
                    f"{chosen[found.name].path} and {found.path}; keep one of them."
                )
            continue
        chosen[found.name] = found
        sources[found.name] = source = found.path.read_bytes()
        parent = found.name.rpartition(".")[0]
        candidates = _imports(found, source) | ({parent} if parent else set())
        for candidate in sorted(candidates - seen):
            seen.add(candidate)
            user = _user_module(candidate)
            if user is not None:
                queue.append(user)
    total = sum(len(s) for s in sources.values())
    if total > MAX_CODE_BYTES:
        raise InvalidInput(
            f"The model's code outside installed packages is {total / 1e6:.1f} MB in "
            f"{len(sources)} modules (over {MAX_CODE_BYTES // 2**20} MiB): install the large "
            "packages among them with pip so requirements.lock pins them instead."
        )
    return ModelCode(
        members={chosen[n].member: sources[n] for n in sorted(chosen)},
        modules=sorted(chosen),
        by_value=list(scan.by_value),
        roots=sorted({f.root for f in chosen.values()}),
        libraries=sorted(libraries),
        missing=sorted(missing),
    )
