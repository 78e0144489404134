"""The artifact store on a local folder, SeaweedFS and moto: the same behaviour everywhere,
uploads that cannot half-happen, conditional creates where writers race, and one clear sentence
for a missing bucket, refused keys or an unreachable endpoint."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from object_stores import SESSION_BUCKET, S3Endpoint, endpoint_for
from shipyard.errors import AlreadyExists, NotFound, StoreUnavailable
from shipyard.serving import free_port
from shipyard.store import ArtifactStore, open_filesystem, sha256

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


def test_two_writers_racing_for_one_key_one_wins(
    object_store_url: tuple[str, dict[str, Any]],
) -> None:
    """Writers start together (a barrier) on their own store objects; the store arbitrates:
    exactly one write lands, every other writer is told, and the winner's bytes stay."""
    url, options = object_store_url
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
