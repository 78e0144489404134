"""The disk a prediction log takes: its write-ahead backlog and its Parquet.

``log_space(root)`` walks the log's folder once (``os.scandir``, no file is opened): the WAL
segments not yet compacted (the backlog: count, bytes, age of the oldest) and the Parquet
parts of predictions, feedback and the prediction-id index, which it lists on the log's
object store when the log has one (``--log-store``). ``shipyard status`` and the server's
``/metrics`` read it.

>>> space = log_space(tmp / "predlog")  # doctest: +SKIP
>>> space.wal_segments, space.wal_bytes, space.parquet_bytes  # doctest: +SKIP
(2, 18342, 5127730)
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shipyard.predlog._location import Location, as_location
from shipyard.predlog._parquet import FEEDBACK_DIR, IDS_DIR, PREDICTIONS_DIR
from shipyard.predlog._wal import WAL_SUFFIX


@dataclass(frozen=True)
class LogSpace:
    """What a prediction log holds on disk (bytes are the files' sizes, not blocks)."""

    root: str
    wal_segments: int = 0
    wal_bytes: int = 0
    #: Seconds since the oldest segment was last written (0 without a segment).
    wal_oldest_seconds: float = 0.0
    parquet_files: int = 0
    parquet_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return self.wal_bytes + self.parquet_bytes

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"total_bytes": self.total_bytes}


def log_space(root: str | Path) -> LogSpace:
    """The space the log under ``root`` (its folder, or its store's URL) takes now (all zero
    for a log not written yet)."""
    location = as_location(root)
    segments, size, oldest = (0, 0, None) if location.folder is None else wal_space(location.folder)
    files = parquet = 0
    for top in (PREDICTIONS_DIR, FEEDBACK_DIR, IDS_DIR):
        n, b = _parquet(location, location.path(top))
        files += n
        parquet += b
    age = max(0.0, time.time() - oldest) if oldest is not None else 0.0
    return LogSpace(str(root), segments, size, age, files, parquet)


def wal_space(root: Path) -> tuple[int, int, float | None]:
    """(segments, bytes, oldest mtime or None) of the WAL of the log folder ``root``."""
    segments = size = 0
    oldest: float | None = None
    try:
        entries = list(os.scandir(root / "wal"))
    except (FileNotFoundError, NotADirectoryError):
        entries = []
    for entry in entries:
        if not entry.name.endswith(WAL_SUFFIX):
            continue
        try:
            stat = entry.stat()
        except FileNotFoundError:  # compacted meanwhile
            continue
        segments += 1
        size += stat.st_size
        oldest = stat.st_mtime if oldest is None else min(oldest, stat.st_mtime)
    return segments, size, oldest


def _parquet(location: Location, folder: str) -> tuple[int, int]:
    """(files, bytes) of the ``.parquet`` files under ``folder``: one listing on a store."""
    if not location.remote:
        return _tree(Path(folder))
    sizes = [b for name, b in location.sizes(folder).items() if name.endswith(".parquet")]
    return len(sizes), sum(sizes)


def _tree(folder: Path) -> tuple[int, int]:
    """(files, bytes) of the ``.parquet`` files under ``folder``."""
    files = size = 0
    stack = [folder]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.name.endswith(".parquet"):
                    files += 1
                    size += entry.stat().st_size
            except FileNotFoundError:  # merged or deleted meanwhile
                continue
    return files, size
