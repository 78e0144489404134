"""Write-ahead segments of the prediction log: naming, creation, ownership, orphans.

A segment is an append-only file of JSON lines for ONE partition key (kind, model, version)::

    <root>/wal/<segment-id>+<kind>+<model>+<version>.wal

Its lines (records, layouts, answers) are described, and decoded, in ``_decode``.

One file per key means the compactor never sorts records by key in Python, and two models
that use one feature name with different types never meet in one reader (which would refuse
them).

A segment belongs to the process holding an exclusive ``flock`` on it. The kernel drops the lock
when that process dies (even by ``kill -9``), so an unlocked segment is an orphan to replay.

>>> segment_name("0001-ab", PartitionKey("p", "churn", 3))
'0001-ab+p+churn+3.wal'
>>> parse_segment_name("0001-ab+p+churn+3.wal")
('0001-ab', PartitionKey(kind='p', model='churn', version=3))
"""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import orjson

WAL_SUFFIX = ".wal"
_NEW_SUFFIX = ".new"  # a segment being created (see new_segment)
PREDICTION = "p"
FEEDBACK = "f"
#: Model partition of rejected requests whose model name is not a valid name at all.
INVALID_MODEL = "_invalid"


class PartitionKey(NamedTuple):
    """Where a group of records lands: kind ("p" or "f"), model, version (None if unknown)."""

    kind: str
    model: str
    version: int | None


@dataclass(frozen=True)
class Layout:
    """The names of an answer line's values, and the layout line that defines them."""

    id: int
    columns: tuple[str, ...]
    classes: tuple[str, ...] | None
    line: bytes  # the layout line, newline included

    @classmethod
    def of(cls, layout_id: int, columns: list[str], classes: list[str] | None) -> Layout:
        line = orjson.dumps({"layout": layout_id, "columns": columns, "classes": classes})
        return cls(
            layout_id,
            tuple(columns),
            None if classes is None else tuple(classes),
            line + b"\n",
        )


def segment_name(segment_id: str, key: PartitionKey) -> str:
    """The file name of a segment (model names never contain '+')."""
    version = "" if key.version is None else str(key.version)
    return f"{segment_id}+{key.kind}+{key.model}+{version}{WAL_SUFFIX}"


def parse_segment_name(name: str) -> tuple[str, PartitionKey]:
    """(segment id, partition key) from a segment's file name."""
    segment_id, kind, model, version = name[: -len(WAL_SUFFIX)].split("+")
    return segment_id, PartitionKey(kind, model, int(version) if version else None)


@dataclass
class Segment:
    """One WAL file (its owner holds the flock on ``fd``)."""

    path: Path
    fd: int
    key: PartitionKey
    records: int = 0
    size: int = 0
    # Wall-clock time of the first append: the age of the oldest record not yet in Parquet.
    first_at: float | None = None
    dirty: bool = False
    layouts: set[int] = field(default_factory=set)  # the layout lines written to it

    @property
    def segment_id(self) -> str:
        return parse_segment_name(self.path.name)[0]


def new_segment(wal_dir: Path, key: PartitionKey) -> Segment:
    """Create and lock a fresh segment for ``key``; its id sorts by creation time.

    The file is created under a name no one lists (``.<name>.new``), locked, then renamed:
    another process replaying orphans (a second server worker starting) never sees it
    unlocked, so it cannot take a brand-new segment for a dead one's and delete it.
    """
    segment_id = f"{time.time_ns():016x}-{uuid.uuid4().hex[:12]}"
    path = wal_dir / segment_name(segment_id, key)
    hidden = wal_dir / f".{path.name}{_NEW_SUFFIX}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
    fd = os.open(hidden, flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(hidden, path)
    except OSError:
        os.close(fd)
        hidden.unlink(missing_ok=True)
        raise
    return Segment(path=path, fd=fd, key=key)


def remove_stale_new(wal_dir: Path, older_than_s: float = 60.0) -> None:
    """Delete ``.new`` files of segment creations that a crash interrupted (they are empty)."""
    cutoff = time.time() - older_than_s
    try:
        stale = [p for p in wal_dir.iterdir() if p.name.endswith(_NEW_SUFFIX)]
    except FileNotFoundError:
        return
    for path in stale:
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:
            continue


def claim_orphan(path: Path) -> Segment | None:
    """Lock a segment left by a dead process, or return None if a live process owns it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:  # compacted meanwhile by its owner
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if not path.exists():  # another process replayed and deleted it while we waited
        os.close(fd)
        return None
    key = parse_segment_name(path.name)[1]
    return Segment(path=path, fd=fd, key=key, size=os.fstat(fd).st_size)


def fsync_dir(path: Path) -> None:
    """fsync a folder: the names created or renamed in it survive a power loss."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_segments(wal_dir: Path) -> list[Path]:
    """Every segment file, oldest first."""
    try:
        return sorted(p for p in wal_dir.iterdir() if p.suffix == WAL_SUFFIX)
    except FileNotFoundError:
        return []
