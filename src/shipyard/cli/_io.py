"""Reading user-supplied files (tables, pickled models) with clear errors; writing a file
whole or not at all (``replace_file``)."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd


def read_table(path: Path) -> pd.DataFrame:
    """A whole Parquet or CSV file (``shipyard.dataset.read_table``, imported when used: the
    CLI loads this module at start-up)."""
    from shipyard.dataset import read_table as read

    return read(path)


def read_model_file(path: Path) -> Any:
    """Unpickle the user's own model file (joblib or pickle)."""
    if not path.is_file():
        raise InvalidInput(f"No such file: '{path}'.")
    import joblib

    try:
        return joblib.load(path)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        raise InvalidInput(
            f"Cannot load '{path}': it needs the module '{exc.name}', which is not importable "
            f"here; pass your own module with --code-path (e.g. --code-path {top}.py, or the "
            "package folder) or install the package that provides it."
        ) from exc
    except Exception as exc:  # joblib raises many types for a file that is not a pickle
        raise InvalidInput(
            f"Cannot load '{path}' as a joblib/pickle model file ({type(exc).__name__}). "
            "Save it with joblib.dump(model, path)."
        ) from exc


@contextlib.contextmanager
def importable(code_paths: list[Path]) -> Iterator[None]:
    """While open, the folders holding ``code_paths`` (files or package folders) are on
    ``sys.path``, so a model file that refers to their modules can be unpickled."""
    folders = [str(p.resolve().parent) for p in code_paths]
    added = [f for f in dict.fromkeys(folders) if f not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for folder in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)


def replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    folder = path.absolute().parent
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InvalidInput(f"Cannot write beside '{path}': {exc}. Check the folder.") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise InvalidInput(f"Cannot write '{path}': {exc}. Check its permissions.") from exc


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
