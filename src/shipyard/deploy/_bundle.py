"""``install_archive``: a container's own store, holding the one archive baked into its image.

An image made by ``shipyard deploy docker`` carries the archive; at start its entrypoint
verifies the bytes against the digest the registry recorded and records the version (same
name, number and digest) in the container's store, with the alias pointing at it and the
serving token given in the environment (never baked into the image). Starting again on the
same store checks the digest again and changes nothing.
"""

from __future__ import annotations

from sqlalchemy import select

from shipyard.auth import hash_token
from shipyard.errors import IntegrityError, InvalidInput
from shipyard.packaging import open_archive
from shipyard.registry import check_alias, check_name
from shipyard.store import Store, append_event, sha256
from shipyard.store import tables as t


def install_archive(
    store: Store,
    data: bytes,
    *,
    name: str,
    version: int,
    digest: str,
    alias: str,
    actor: str,
    token: str | None,
) -> bool:
    """Verify ``data`` against ``digest`` and record it as ``name`` v``version`` with
    ``alias``; ``token`` becomes a ``scorer`` token. False when it was recorded already.

    >>> install_archive(store, data, name="churn", version=3, digest="sha256:...",
    ...                 alias="production", actor="container", token=None)  # doctest: +SKIP
    True
    """
    check_name(name)
    check_alias(alias)
    label = f"{name} v{version}"
    archive = open_archive(data, expected_digest=digest, label=label)  # digest, then members
    manifest = archive.manifest
    if (manifest.name, manifest.version) != (name, version):
        raise InvalidInput(
            f"The archive holds {manifest.name} v{manifest.version}, not {label}: rebuild the "
            "image with 'shipyard deploy docker'."
        )
    with store.write() as session:
        now = t.utcnow()
        if (
            token
            and session.scalar(select(t.ApiToken).filter_by(token_hash=hash_token(token))) is None
        ):
            session.add(
                t.ApiToken(
                    name="container",
                    role="scorer",
                    token_hash=hash_token(token),
                    created_at=now,
                    created_by=actor,
                    revoked_at=None,
                    user=None,
                )
            )
        existing = session.scalar(
            select(t.ModelVersion).filter_by(model_name=name, version=version)
        )
        if existing is not None:
            if existing.digest != digest:
                raise IntegrityError(
                    f"This container's store holds another {label} (digest "
                    f"{existing.digest[:19]}...): start it with an empty SHIPYARD_HOME."
                )
            return False
        if session.get(t.Model, name) is None:
            session.add(t.Model(name=name, tags={}, created_at=now, created_by=actor))
            session.flush()  # the rows below reference it (no ORM relationship orders them)
        key = f"models/{name}/{version}-{digest.removeprefix('sha256:')[:12]}.zip"
        stored = store.artifacts.put(key, data)
        if stored != digest or sha256(data) != digest:
            raise IntegrityError(f"The copy of {label} in this container's store is corrupt.")
        session.add(
            t.ModelVersion(
                model_name=name,
                version=version,
                author=manifest.author,
                created_at=manifest.created_at,
                run_id=None,
                flavor=manifest.flavor,
                task=manifest.task,
                archive_key=key,
                digest=digest,
                size=len(data),
                metrics=dict(manifest.metrics),
                tags={},
                description="",
                archived_at=None,
            )
        )
        session.flush()
        session.add(
            t.Alias(model_name=name, alias=alias, version=version, updated_at=now, updated_by=actor)
        )
        session.add(
            t.AliasChange(
                model_name=name,
                alias=alias,
                version=version,
                previous_version=None,
                action="set",
                at=now,
                by=actor,
                reason="baked into the container image",
            )
        )
        append_event(
            session,
            actor=actor,
            action="version.installed",
            subject=f"model:{name}/{version}",
            details={"digest": digest, "alias": alias, "source": "container image"},
        )
    return True
