"""Where the prediction log's Parquet goes in these tests: beside the WAL, or on a real
object store (SeaweedFS, moto's server; ``tests/object_stores.py``), read back with s3fs."""

from __future__ import annotations

import fnmatch
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.predlog import PredictionLog

STORES = ["local", "seaweedfs", "moto"]


@dataclass
class LogStore:
    """One place for a test log's Parquet: ``url`` None means beside the WAL."""

    name: str
    url: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def log(self, root: Path, **kwargs: Any) -> PredictionLog:
        """A (not yet opened) log under ``root`` with its Parquet here."""
        if self.url is None:
            return PredictionLog(root, **kwargs)
        return PredictionLog(root, store_url=self.url, storage_options=self.options, **kwargs)

    def files(self, root: Path, pattern: str = "part-*.parquet") -> list[str]:
        """Parquet files whose name matches ``pattern``, relative to the Parquet root."""
        if self.url is None:
            return sorted(p.relative_to(root).as_posix() for p in root.rglob(pattern))
        fs, base = self._fs()
        fs.invalidate_cache()
        found = [str(p) for p in fs.find(base)]
        return sorted(
            p[len(base) + 1 :] for p in found if fnmatch.fnmatch(p.rsplit("/", 1)[-1], pattern)
        )

    def read_schema(self, root: Path, relative: str) -> pa.Schema:
        if self.url is None:
            return pq.read_schema(root / relative)
        fs, base = self._fs()
        with fs.open(f"{base}/{relative}", "rb") as fh:
            return pq.read_schema(fh)

    def _fs(self) -> tuple[Any, str]:
        import s3fs

        assert self.url is not None
        fs = s3fs.S3FileSystem(**self.options)
        return fs, self.url.removeprefix("s3://").rstrip("/")


def make_log_store(request: pytest.FixtureRequest, name: str) -> LogStore:
    """A fresh prefix of the session bucket on the ``name`` server (whose keys also go in the
    environment, as AWS tools read them: readers given only the log folder use them)."""
    if name == "local":
        return LogStore("local")
    from object_stores import SESSION_BUCKET, endpoint_for

    endpoint = endpoint_for(request, name)
    monkeypatch = request.getfixturevalue("monkeypatch")
    for key, value in endpoint.env().items():
        monkeypatch.setenv(key, value)
    url = endpoint.url(SESSION_BUCKET, f"predlog-{uuid.uuid4().hex[:12]}")
    return LogStore(name, url, endpoint.storage_options())


@pytest.fixture(params=STORES)
def log_store(request: pytest.FixtureRequest) -> LogStore:
    """The test runs once per place: local disk, SeaweedFS and moto."""
    return make_log_store(request, request.param)


def restart(endpoint: Any) -> None:
    """``endpoint.start()`` without this process's ``AWS_*`` variables: ``weed`` reads them
    as an admin identity of its own, and a restart with them set does not come up in time."""
    import os

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_")}
    try:
        endpoint.start()
    finally:
        os.environ.update(saved)
