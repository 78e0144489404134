"""The artifact store: immutable blobs (archives, run artifacts) behind any fsspec URL."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Iterator
from typing import BinaryIO

import fsspec
from fsspec.spec import AbstractFileSystem

from shipyard.errors import NotFound, StoreUnavailable


class ArtifactStore:
    """Blobs addressed by a key such as ``models/churn/3-1a2b3c.zip``.

    ``url`` is a local folder or any fsspec URL (``s3://bucket/prefix``, ``memory://x``).

    >>> store = ArtifactStore("memory://doc").open()
    >>> store.put("a/b.txt", b"hi")
    'sha256:8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4'
    >>> store.get("a/b.txt")
    b'hi'
    """

    def __init__(self, url: str) -> None:
        self.url = url

    def open(self) -> ArtifactStore:
        try:
            fs, root = fsspec.core.url_to_fs(self.url)
            fs.makedirs(root, exist_ok=True)
        except (OSError, ValueError, ImportError) as exc:
            raise StoreUnavailable(
                f"Cannot use the artifact store '{self.url}': {exc}. Set SHIPYARD_ARTIFACTS "
                "(or SHIPYARD_HOME) to a writable folder or a reachable fsspec URL."
            ) from exc
        self._fs: AbstractFileSystem = fs
        self._root = root.rstrip("/")
        return self

    def _path(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"invalid artifact key {key!r}")
        return f"{self._root}/{key}"

    def put(self, key: str, data: bytes) -> str:
        """Write ``data`` under ``key`` atomically (temp name, then rename); return its digest."""
        path = self._path(key)
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        try:
            self._fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            with self._fs.open(tmp, "wb") as fh:
                fh.write(data)
            self._fs.mv(tmp, path)
        except OSError as exc:
            self._discard(tmp)
            raise StoreUnavailable(
                f"Cannot write to the artifact store '{self.url}': {exc}. Make the folder "
                "writable or point SHIPYARD_ARTIFACTS elsewhere."
            ) from exc
        return sha256(data)

    def get(self, key: str) -> bytes:
        try:
            with self._fs.open(self._path(key), "rb") as fh:
                data: bytes = fh.read()
                return data
        except FileNotFoundError as exc:
            raise NotFound(
                f"The artifact '{key}' is missing from '{self.url}'; it was deleted out of band."
            ) from exc

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        """``key`` as a seekable binary file, read on demand (for a zip's manifest alone: a
        remote store then fetches the few ranges the zip reader asks for, not the blob)."""
        try:
            with self._fs.open(self._path(key), "rb") as fh:
                yield fh
        except FileNotFoundError as exc:
            raise NotFound(
                f"The artifact '{key}' is missing from '{self.url}'; it was deleted out of band."
            ) from exc

    def exists(self, key: str) -> bool:
        return bool(self._fs.exists(self._path(key)))

    def delete(self, key: str) -> None:
        self._discard(self._path(key))

    def size(self, key: str) -> int:
        return int(self._fs.size(self._path(key)))

    def _discard(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm(path)


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``: the digest format used everywhere in Shipyard."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
