"""Building and opening model archives: one immutable, checksummed zip per version.

Layout::

    manifest.json            name, version, author, schema, metrics, lineage, member checksums
    model/...                the flavor's files (e.g. model/model.joblib)
    model.onnx               ONNX export when the converter managed it (sklearn family)
    reference_profile.json   profile of the training data (and of the model's outputs)
    requirements.lock        the training environment, every distribution pinned (the record)
    runtime.lock             what the model needs to load and predict: the distributions of
                             the modules its pickle refers to, its flavor's frameworks and
                             Shipyard's requirements, closed over their requirements, pinned
                             (``_runtime``); ``shipyard env create``, ``env check`` and the
                             Docker image use it. Archives made before it have none: they
                             fall back to requirements.lock
    eval/rows.parquet        the eval rows and their labels (column EVAL_TARGET), if given
    eval/outputs.parquet     the model's predictions and probabilities on them, and the labels
    data_checks.json         training-data checks (duplicates, constant columns, leakage
                             scores: ``shipyard.dataset.training_checks``), if y_train is given
    code/...                 the model's own modules' source (``features.py``, packages with
                             their ``__init__.py``), if it needs any: format 2
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, BinaryIO

from shipyard.dataset import Schema
from shipyard.errors import IntegrityError
from shipyard.packaging._manifest import FORMAT_VERSION, FORMAT_WITHOUT_CODE, Lineage, Manifest
from shipyard.store import sha256

if TYPE_CHECKING:
    import pandas as pd

#: The label's column in ``eval/rows.parquet`` and ``eval/outputs.parquet``.
EVAL_TARGET = "__target__"
#: At most this many eval rows are kept in an archive (a seeded sample beyond).
EVAL_ROWS = 200_000

_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # member timestamps: the manifest carries the real time


@dataclass
class PreparedArchive:
    """Everything of an archive that does not depend on its name and version number.

    ``prepare_archive`` makes one (the slow part: pickling, profiling, ONNX parity), outside any
    database transaction; the registry then numbers it and calls ``build``.
    """

    flavor: str
    frameworks: dict[str, str]
    python: str
    task: str
    classes: list[Any] | None
    input_kind: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    metrics: dict[str, float]
    lineage: Lineage
    onnx: dict[str, Any] | None
    members: dict[str, bytes] = field(repr=False)
    #: The model's own modules among ``members`` (``code/...``), and what went by value.
    code_modules: list[str] = field(default_factory=list)
    pickled_by_value: list[str] = field(default_factory=list)

    def build(self, *, name: str, version: int, author: str, created_at: datetime) -> bytes:
        """The zip bytes of this archive as version ``version`` of ``name``."""
        has_code = any(path.startswith("code/") for path in self.members)
        manifest = Manifest(
            format_version=FORMAT_VERSION if has_code else FORMAT_WITHOUT_CODE,
            name=name,
            version=version,
            author=author,
            created_at=created_at,
            flavor=self.flavor,
            frameworks=self.frameworks,
            python=self.python,
            task=self.task,  # type: ignore[arg-type]
            classes=self.classes,
            input_kind=self.input_kind,  # type: ignore[arg-type]
            input_schema=self.input_schema,
            output_schema=self.output_schema,
            metrics=self.metrics,
            lineage=self.lineage,
            onnx=self.onnx,
            code_modules=self.code_modules,
            pickled_by_value=self.pickled_by_value,
            members={path: sha256(data) for path, data in sorted(self.members.items())},
        )
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            _write(zf, "manifest.json", manifest.model_dump_json(indent=2).encode())
            for path, data in sorted(self.members.items()):
                _write(zf, path, data)
        return buf.getvalue()


def _write(zf: zipfile.ZipFile, path: str, data: bytes) -> None:
    info = zipfile.ZipInfo(path, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


@dataclass(frozen=True)
class Archive:
    """A verified archive: its manifest and member bytes. Reading its schema and reference
    profile unpickles nothing (``LoadedModel`` loads the model)."""

    digest: str
    manifest: Manifest
    members: dict[str, bytes] = field(repr=False)

    def json_member(self, path: str) -> Any:
        try:
            return json.loads(self.members[path])
        except (KeyError, ValueError) as exc:  # a member the checksums vouch for, yet broken
            raise IntegrityError(
                f"The archive of {self._label} has no readable '{path}'; register the model again."
            ) from exc

    @cached_property
    def schema(self) -> Schema:
        """The input schema the model was trained on."""
        try:
            return Schema.model_validate(self.manifest.input_schema)
        except ValueError as exc:  # found by bench/fuzz: a manifest with a malformed schema
            raise IntegrityError(
                f"The archive of {self._label} has an input schema Shipyard cannot read; "
                "register the model again."
            ) from exc

    @property
    def _label(self) -> str:
        return f"{self.manifest.name} v{self.manifest.version}"

    def eval_rows(self) -> pd.DataFrame | None:
        """The eval rows registered with the model, the label in column ``EVAL_TARGET``
        (``None``: registered without ``X_eval``)."""
        return self._frame("eval/rows.parquet")

    def eval_outputs(self) -> pd.DataFrame | None:
        """The model's outputs on its eval rows (``prediction``, ``proba_<class>``) and the
        label (``EVAL_TARGET``), as computed at registration."""
        return self._frame("eval/outputs.parquet")

    def _frame(self, path: str) -> pd.DataFrame | None:
        data = self.members.get(path)
        if data is None:
            return None
        import pandas as pd

        return pd.read_parquet(io.BytesIO(data))

    def data_checks(self) -> dict[str, Any] | None:
        """The training-data checks computed at registration (``training_checks``); ``None``
        for a model registered without ``y_train`` or before the checks existed."""
        if "data_checks.json" not in self.members:
            return None
        checks: dict[str, Any] = self.json_member("data_checks.json")
        return checks

    @cached_property
    def reference_profile(self) -> dict[str, Any]:
        """The profiles of the training data: ``"inputs"`` (and ``"outputs"``, the model's)."""
        profile: dict[str, Any] = self.json_member("reference_profile.json")
        return profile


#: What ``zipfile`` raises for a damaged zip: besides BadZipFile, a ValueError for offsets
#: that point before the start (found by bench/fuzz), NotImplementedError for an unknown
#: compression method, RuntimeError for an encrypted member.
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError)


def open_archive(data: bytes, *, expected_digest: str, label: str) -> Archive:
    """Verify ``data`` against the registry's digest and every member's checksum.

    Nothing is unpickled here; callers load the model only from an ``Archive`` this returned.
    ``label`` names the version in error messages (e.g. ``"churn v3"``).
    """
    digest = sha256(data)
    if digest != expected_digest:
        raise IntegrityError(
            f"The archive of {label} does not match the digest recorded in the registry "
            f"(expected {expected_digest[:19]}..., found {digest[:19]}...): it was changed after "
            "registration. Restore it from a backup or register the model again; it will not "
            "be loaded."
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = {info.filename: zf.read(info) for info in zf.infolist()}
    except _ZIP_ERRORS as exc:
        raise IntegrityError(f"The archive of {label} is not a readable zip file: {exc}.") from exc
    try:
        manifest = Manifest.model_validate_json(members.pop("manifest.json"))
    except (KeyError, ValueError) as exc:
        raise IntegrityError(f"The archive of {label} has no valid manifest.json.") from exc
    if manifest.format_version > FORMAT_VERSION:
        raise IntegrityError(
            f"The archive of {label} has format {manifest.format_version}; this Shipyard reads "
            f"up to {FORMAT_VERSION}. Upgrade Shipyard to load it."
        )
    if set(members) != set(manifest.members):
        odd = sorted(set(members) ^ set(manifest.members))
        raise IntegrityError(f"The archive of {label} has unlisted or missing members: {odd}.")
    for path, data_ in members.items():
        if sha256(data_) != manifest.members[path]:
            raise IntegrityError(f"The member '{path}' of {label} fails its checksum.")
    return Archive(digest=digest, manifest=manifest, members=members)


def read_manifest(fh: BinaryIO, *, label: str) -> Manifest:
    """The manifest of the archive in the seekable file ``fh``, reading only the zip's
    directory and ``manifest.json``: for pages that show an archive's members and digests.

    Nothing is verified against the registry's digest (that needs every byte); the member
    checksums are the ones the manifest records. ``open_archive`` verifies before any use.
    """
    try:
        with zipfile.ZipFile(fh) as zf:
            raw = zf.read("manifest.json")
    except (*_ZIP_ERRORS, KeyError) as exc:
        raise IntegrityError(
            f"The archive of {label} has no readable manifest.json: {exc}."
        ) from exc
    try:
        return Manifest.model_validate_json(raw)
    except ValueError as exc:
        raise IntegrityError(f"The archive of {label} has no valid manifest.json.") from exc
