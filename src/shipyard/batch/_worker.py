"""The model inside a cluster's worker process (Spark executor or Dask worker), loaded once."""

from __future__ import annotations

from shipyard.errors import IntegrityError
from shipyard.packaging import Archive, LoadedModel
from shipyard.store import sha256

# Models loaded in this worker process, by archive digest. Spark reuses its Python workers
# across tasks (spark.python.worker.reuse) and a Dask worker runs every task of a job, so each
# process unpickles a version once, not once per partition. Only workers fill it; the driver
# never does.
_WORKER_MODELS: dict[str, LoadedModel] = {}


def worker_model(archive: Archive) -> LoadedModel:
    """``archive``'s model, loaded once per process, after checking that every member still
    matches the manifest's checksums (the archive was verified against the registry's digest
    on the driver, then travelled to this worker)."""
    loaded = _WORKER_MODELS.get(archive.digest)
    if loaded is None:
        for path, data in archive.members.items():
            if sha256(data) != archive.manifest.members.get(path):
                raise IntegrityError(
                    f"The member '{path}' of {archive.manifest.name} "
                    f"v{archive.manifest.version} fails its checksum on a cluster worker."
                )
        loaded = _WORKER_MODELS[archive.digest] = LoadedModel(archive)
    return loaded
