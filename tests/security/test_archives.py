"""An archive whose pickle would run code is refused before anything is unpickled: the whole
archive is checked against the digest the registry recorded at registration, so a model file
swapped in the artifact store (with a manifest rewritten to match it) never loads, in the
registry's ``load`` and in the model server."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import pytest

from security.conftest import make_served
from serving.conftest import http
from shipyard.errors import IntegrityError
from shipyard.packaging import PreparedArchive
from shipyard.registry import Registry
from shipyard.serving import create_app
from shipyard.settings import ServeSettings
from shipyard.store import sha256

GOOD = {"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}


class _RunsCode:
    """Unpickling this writes ``marker``: what a hostile model file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _hostile(data: bytes, marker: Path) -> bytes:
    """``data`` (an archive) with its model file replaced by a pickle that runs code, and its
    manifest's checksums rewritten to match: only the registry's digest can tell."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    manifest = json.loads(members["manifest.json"])
    model = [m for m in members if m.startswith("model/")]
    assert model, sorted(members)
    for name in model:
        members[name] = pickle.dumps(_RunsCode(marker))
        manifest["members"][name] = sha256(members[name])
    members["manifest.json"] = json.dumps(manifest).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return out.getvalue()


@pytest.mark.anyio
async def test_a_swapped_archive_that_would_run_code_is_never_unpickled(
    tmp_path: Path, prepared: PreparedArchive
) -> None:
    served = make_served(tmp_path / "home", prepared)
    marker = tmp_path / "pwned"
    registry = Registry(served.store)
    key = registry.get_version("churn", 1).archive_key
    served.store.artifacts.put(key, _hostile(served.store.artifacts.get(key), marker))
    try:
        with pytest.raises(IntegrityError, match="changed after registration"):
            registry.load("churn", 1)
        async with http(create_app(served.store, settings=ServeSettings(auth=False))) as client:
            answer = await client.post("/models/churn/predict", json={"records": [GOOD]})
        assert answer.status_code == 503 and "changed after registration" in answer.text
    finally:
        served.store.close()
    assert not marker.exists()


def test_a_manifest_with_an_unreadable_schema_is_an_integrity_error() -> None:
    """Found by bench/fuzz (archive): the schema was parsed on first use and raised pydantic's
    ValidationError (a 500) instead of saying the archive is broken."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[2] / "bench" / "fuzz"))
    from run import _seed_archive  # the fuzzer's own seed, with its schema broken

    from shipyard.packaging import open_archive

    data = _seed_archive({"columns": [{"name": "age", "type": "integer"}]})
    archive = open_archive(data, expected_digest=sha256(data), label="churn v1")
    with pytest.raises(IntegrityError, match="input schema Shipyard cannot read"):
        archive.schema  # noqa: B018


@pytest.mark.parametrize("finding", sorted((Path(__file__).parent / "fuzz_findings").glob("*")))
def test_what_the_fuzzer_found_is_refused_with_one_sentence(finding: Path) -> None:
    """Each input bench/fuzz found (kept in fuzz_findings/) is an IntegrityError, not a crash."""
    from shipyard.packaging import open_archive, read_manifest

    data = finding.read_bytes()
    with pytest.raises(IntegrityError):
        open_archive(data, expected_digest=sha256(data), label="churn v1")
    with pytest.raises(IntegrityError):
        read_manifest(io.BytesIO(data), label="churn v1")
