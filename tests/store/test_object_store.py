"""The artifact store on a local folder, SeaweedFS and moto: the same behaviour everywhere,
uploads that cannot half-happen, conditional creates where writers race, and one clear sentence
for a missing bucket, refused keys or an unreachable endpoint."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from cli_support import cli
from gates_off import NO_GATES
from object_stores import SESSION_BUCKET, S3Endpoint, endpoint_for
from shipyard import Client, Settings
from shipyard.config import StorageTable
from shipyard.errors import AlreadyExists, IntegrityError, NotFound, StoreUnavailable
from shipyard.serving import free_port
from shipyard.store import ArtifactStore, Store, open_filesystem, sha256

MiB = 1024 * 1024


def test_blobs_round_trip(object_store_url: tuple[str, dict[str, Any]]) -> None:
    url, options = object_store_url
    store = ArtifactStore(url, options).open()
    digest = store.put("models/churn/1-abc.zip", b"archive bytes")
    assert digest == sha256(b"archive bytes")
    assert store.get("models/churn/1-abc.zip") == b"archive bytes"
    assert store.exists("models/churn/1-abc.zip") and store.size("models/churn/1-abc.zip") == 13
    with store.open_read("models/churn/1-abc.zip") as fh:
        fh.seek(8)
        assert fh.read() == b"bytes"
    store.put("models/churn/1-abc.zip", b"replaced")  # a plain put overwrites
    assert store.get("models/churn/1-abc.zip") == b"replaced"
    store.delete("models/churn/1-abc.zip")
    assert not store.exists("models/churn/1-abc.zip")
    with pytest.raises(NotFound, match="missing from"):
        store.get("models/churn/1-abc.zip")
    store.delete("models/churn/1-abc.zip")  # deleting twice is fine


def test_put_if_absent_never_overwrites(object_store_url: tuple[str, dict[str, Any]]) -> None:
    url, options = object_store_url
    store = ArtifactStore(url, options).open()
    store.put("k/one", b"first", if_absent=True)
    with pytest.raises(AlreadyExists, match="another writer stored it first"):
        store.put("k/one", b"second", if_absent=True)
    assert store.get("k/one") == b"first"


@pytest.mark.parametrize("where", ["local", "seaweedfs"])
def test_two_writers_racing_for_one_key_one_wins(
    where: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Writers start together (a barrier) on their own store objects; the store arbitrates:
    exactly one write lands, every other writer is told, and the winner's bytes stay.

    Not on moto: its server checks If-None-Match and then writes without a lock, so two
    concurrent PUTs can both pass (sequential ones are refused, test above)."""
    if where == "local":
        url, options = str(tmp_path / "race"), {}
    else:
        endpoint = endpoint_for(request, where)
        url = endpoint.url(SESSION_BUCKET, f"t-{uuid.uuid4().hex[:12]}")
        options = endpoint.storage_options()
    writers = 6
    stores = [ArtifactStore(url, options).open() for _ in range(writers)]
    barrier = threading.Barrier(writers)
    won: list[bytes] = []
    lost: list[BaseException] = []

    def write(i: int) -> None:
        data = f"writer {i} ".encode() * 1000
        barrier.wait()
        try:
            stores[i].put("race/key", data, if_absent=True)
            won.append(data)
        except AlreadyExists as exc:
            lost.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == writers - 1
    assert stores[0].get("race/key") == won[0]


@pytest.mark.parametrize("server", ["seaweedfs", "moto"])
def test_an_archive_over_the_block_size_goes_up_in_parts(
    request: pytest.FixtureRequest, server: str
) -> None:
    """12 MiB with a 5 MiB block: three parts, one object; the ETag says multipart."""
    endpoint = endpoint_for(request, server)
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    options = {**endpoint.storage_options(), "default_block_size": 5 * MiB}
    store = ArtifactStore(endpoint.url(SESSION_BUCKET, prefix), options).open()
    data = bytes(range(256)) * (12 * MiB // 256) + b"tail"
    assert store.put("big.zip", data) == sha256(data)
    client = endpoint.client()
    head = client.head_object(Bucket=SESSION_BUCKET, Key=f"{prefix}/big.zip")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]
    assert store.get("big.zip") == data
    # a conditional multipart upload is refused at completion, and leaves no parts behind
    with pytest.raises(AlreadyExists):
        store.put("big.zip", b"x" * (11 * MiB), if_absent=True)
    assert store.get("big.zip") == data
    uploads = client.list_multipart_uploads(Bucket=SESSION_BUCKET, Prefix=prefix)
    assert not uploads.get("Uploads"), uploads


# --- one sentence for each way an object store says no ---------------------------------------


@pytest.fixture(params=["seaweedfs", "moto"])
def endpoint(request: pytest.FixtureRequest) -> S3Endpoint:
    return endpoint_for(request, request.param)


def test_a_missing_bucket_is_named_with_the_fix(endpoint: S3Endpoint) -> None:
    url = endpoint.url("no-such-bucket-here", "artifacts")
    with pytest.raises(StoreUnavailable) as info:
        ArtifactStore(url, endpoint.storage_options()).open()
    message = info.value.message
    assert "the bucket 'no-such-bucket-here' does not exist" in message
    assert endpoint.endpoint_url in message and "aws s3 mb s3://no-such-bucket-here" in message
    # nothing was created on the way
    names = [b["Name"] for b in endpoint.client().list_buckets()["Buckets"]]
    assert "no-such-bucket-here" not in names


def test_refused_keys_are_named_with_the_fix(seaweedfs: S3Endpoint) -> None:
    """(SeaweedFS only: moto's server accepts any key unless its IAM emulation is on.)"""
    endpoint = seaweedfs
    options = {**endpoint.storage_options(), "secret": "not-the-secret"}
    with pytest.raises(StoreUnavailable) as info:
        ArtifactStore(endpoint.url(SESSION_BUCKET, "x"), options).open()
    message = info.value.message
    assert "refused the keys" in message and "AWS_ACCESS_KEY_ID" in message
    assert "not-the-secret" not in message


def test_an_unreachable_endpoint_is_named_with_the_fix() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    options = {
        "key": "k",
        "secret": "s",
        "endpoint_url": endpoint,
        "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}},
    }
    with pytest.raises(StoreUnavailable) as info:
        open_filesystem(f"s3://{SESSION_BUCKET}/x", options)
    assert f"{endpoint} cannot be reached" in info.value.message
    assert "AWS_ENDPOINT_URL" in info.value.message


def test_the_endpoint_and_keys_come_from_the_aws_variables(
    endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in endpoint.env().items():
        monkeypatch.setenv(name, value)
    store = ArtifactStore(endpoint.url(SESSION_BUCKET, f"t-{uuid.uuid4().hex[:8]}")).open()
    store.put("a", b"via the environment")
    assert store.get("a") == b"via the environment"


def test_a_local_folder_that_cannot_be_written_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreUnavailable, match="Cannot open the store"):
        ArtifactStore(str(blocker / "artifacts")).open()


# --- an archive swapped on the bucket, behind Shipyard's back ----------------------------------


def test_an_archive_swapped_on_the_bucket_is_refused_at_load(
    seaweedfs: S3Endpoint, tmp_path: Path, fitted_pipeline, training_data
) -> None:  # type: ignore[no-untyped-def]
    """Someone with the bucket's keys replaces v1's object by v2's (a valid archive, signed
    by nobody): the digest the registry recorded catches it before anything is unpickled.
    (tests/registry/test_registry.py swaps through the store, on every server.)"""
    endpoint = seaweedfs
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    store = Store(
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        endpoint.url(SESSION_BUCKET, prefix),
        creator="admin",
        storage_options=endpoint.storage_options(),
    ).open()
    alice = Client(Settings(user="alice"), store=store, project=NO_GATES).open()
    X, y, _, _ = training_data
    for _ in range(2):
        alice.register(fitted_pipeline, name="churn", X_train=X, y_train=y, onnx=False)
    v1, v2 = (alice.registry.get_version("churn", n) for n in (1, 2))
    client = endpoint.client()
    other = client.get_object(Bucket=SESSION_BUCKET, Key=f"{prefix}/{v2.archive_key}")
    swapped = other["Body"].read()
    client.put_object(Bucket=SESSION_BUCKET, Key=f"{prefix}/{v1.archive_key}", Body=swapped)
    fresh = Client(Settings(user="alice"), store=store, project=NO_GATES).open()  # no cache
    with pytest.raises(IntegrityError, match="does not match the digest"):
        fresh.load("churn", version=1)
    assert fresh.load("churn", version=2).version == 2
    store.close()


# --- the endpoint stopped and started again ----------------------------------------------------


@pytest.mark.slow
def test_a_stopped_store_is_one_clear_error_and_comes_back(seaweedfs: S3Endpoint) -> None:
    """What a fault test relies on: while SeaweedFS is down every call fails fast with the
    endpoint named; after ``start()`` the same store object works and the data is still there."""
    store = ArtifactStore(
        seaweedfs.url(SESSION_BUCKET, f"t-{uuid.uuid4().hex[:12]}"), seaweedfs.storage_options()
    ).open()
    store.put("kept", b"before the outage")
    seaweedfs.stop(hard=True)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="cannot be reached"):
            store.get("kept")
        with pytest.raises(StoreUnavailable, match=re.escape(seaweedfs.endpoint_url)):
            store.put("new", b"during the outage")
        assert time.monotonic() - started < 30
    finally:
        seaweedfs.start()
    assert store.get("kept") == b"before the outage"
    store.put("new", b"after the outage")
    assert store.keys() == ["kept", "new"]


# --- shipyard init says what is wrong ---------------------------------------------------------


def _init(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> tuple[int, str, str]:
    for name in list(os.environ):
        if name.startswith(("AWS_", "SHIPYARD_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return cli(capsys, "init")


@pytest.mark.slow
def test_shipyard_init_on_an_object_store(
    seaweedfs: S3Endpoint,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The AWS variables and SHIPYARD_ARTIFACTS are all it takes; a missing bucket and refused
    keys are one line each, exit code 1, and leave no database behind."""
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    base = {"SHIPYARD_HOME": str(home), "SHIPYARD_USER": "ops", **seaweedfs.env()}
    env = {**base, "SHIPYARD_ARTIFACTS": seaweedfs.url("no-such-bucket", "x")}
    code, _, err = _init(monkeypatch, capsys, env)
    assert code == 1 and "the bucket 'no-such-bucket' does not exist" in err, err
    assert len(err.strip().splitlines()) <= 4

    env = {**base, "SHIPYARD_ARTIFACTS": seaweedfs.url(SESSION_BUCKET, "init")}
    code, out, err = _init(monkeypatch, capsys, {**env, "AWS_SECRET_ACCESS_KEY": "wrong-secret"})
    assert code == 1 and "refused the keys" in err, err
    assert "wrong-secret" not in out + err

    # keys in the environment, the endpoint from [storage] in shipyard.toml
    (tmp_path / "shipyard.toml").write_text(
        f'[storage]\noptions = {{ endpoint_url = "{seaweedfs.endpoint_url}" }}\n'
    )
    env.pop("AWS_ENDPOINT_URL")
    code, out, err = _init(monkeypatch, capsys, env)
    assert code == 0, err
    assert "Created the Shipyard store" in out and "s3://shipyard-tests/init" in out


def test_storage_options_from_the_environment_override_shipyard_toml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "SHIPYARD_STORAGE_OPTIONS", json.dumps({"endpoint_url": "http://b:1", "anon": False})
    )
    storage = StorageTable(options={"endpoint_url": "http://a:1", "default_block_size": 5 * MiB})
    store = Store.from_settings(Settings(), storage)
    assert store.storage_options == {
        "endpoint_url": "http://b:1",
        "anon": False,
        "default_block_size": 5 * MiB,
    }
