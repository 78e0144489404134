"""Deployment files for one model version: a container image, Kubernetes, KServe.

Rendered from the Jinja2 templates in ``templates/`` (YAML values go through ``tojson``, so a
name never breaks the YAML) and written by ``write_files``: all or nothing, into a folder that
is empty unless ``force``. The Kubernetes Deployment and KServe's ServingRuntime include the
same container (``container.yaml.j2``: image, env, probes, resources) and the same volumes
(``volumes.yaml.j2``), so the options of ``shared`` reach both alike.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import jinja2

from shipyard.deploy._lock import model_lock
from shipyard.deploy._source import ShipyardSource
from shipyard.errors import AlreadyExists, InvalidInput, MissingDependency
from shipyard.packaging import Archive

TARGETS = ("docker", "k8s", "kserve")
#: The keys of ``--storage-secret`` (each optional), set as the environment variables of
#: the same names: botocore reads the ``AWS_*`` ones, Shipyard the storage options (JSON).
STORAGE_KEYS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "SHIPYARD_STORAGE_OPTIONS",
)
#: The key of ``--database-url-secret`` holding the registry's URL.
DATABASE_URL_KEY = "database-url"
#: Where a pod keeps its prediction log's WAL when the Parquet goes to ``--log-store``.
LOG_DIR = "/var/lib/shipyard/predlog"
#: The gRPC port of KServe's predictor (KServe's own default, ``DEFAULT_GRPC_PORT``).
KSERVE_GRPC_PORT = 8081
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("shipyard.deploy", "templates"),
    autoescape=False,  # Dockerfiles and YAML, not HTML: values are quoted with tojson
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)


def render(template: str, **context: object) -> str:
    """Render one of the package's templates."""
    return _env.get_template(template).render(**context)


def k8s_name(name: str) -> str:
    """A model name as a Kubernetes object name (RFC 1123 label: ``a-z``, ``0-9``, ``-``)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:50].strip("-")
    return cleaned or "model"


@dataclass(frozen=True)
class Target:
    """What the files describe: the version, its image and how it runs."""

    name: str
    version: int
    alias: str
    digest: str
    python: str
    shipyard_version: str
    image: str = ""
    port: int = 8080
    uid: int = 10001
    min_replicas: int = 2
    max_replicas: int = 10
    cpu: str = "500m"
    memory: str = "512Mi"
    cpu_limit: str = "2"
    memory_limit: str = "2Gi"
    #: The CPU utilisation (percent of the request) the autoscaler keeps.
    cpu_utilization: int = 70
    #: Also serve the Open Inference Protocol over gRPC on this port (KServe's predictor).
    grpc_port: int | None = None
    wheel_name: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # -- replicas sharing one registry and one object store (``shared``; issue 14) --
    #: Secret whose ``database-url`` key is the shared registry (``SHIPYARD_DB_URL``).
    database_secret: str | None = None
    #: The registry's artifact store every replica reads (``SHIPYARD_ARTIFACTS``).
    artifacts: str | None = None
    #: Secret holding the object store's keys (``STORAGE_KEYS``, each optional).
    storage_secret: str | None = None
    #: Where the prediction log's Parquet goes (``shipyard serve --log-store``).
    log_store: str | None = None

    @property
    def k8s_name(self) -> str:
        return k8s_name(self.name)

    @property
    def archive(self) -> str:
        return f"{self.name}-v{self.version}.zip"

    @property
    def wheel(self) -> str | None:
        return f"wheels/{self.wheel_name}" if self.wheel_name else None

    @property
    def secret(self) -> str:
        return f"{self.k8s_name}-serve-token"

    @property
    def runtime_name(self) -> str:
        """The name of the KServe ``ServingRuntime`` that runs this image."""
        return f"shipyard-{self.k8s_name}"

    @property
    def serve_command(self) -> list[str]:
        """The container's command: the image's ``CMD``, with the gRPC port when there is
        one and the log's options when its Parquet goes to an object store (the WAL on the
        pod's own ``predlog`` volume)."""
        command = ["shipyard", "serve", "--host", "0.0.0.0", "--port", str(self.port)]
        command += ["--models", self.name, "--alias", self.alias]
        if self.grpc_port:
            command += ["--grpc-port", str(self.grpc_port)]
        if self.log_store:
            command += ["--log-dir", LOG_DIR, "--log-store", self.log_store]
        return command

    @property
    def container_args(self) -> list[str] | None:
        """The container's ``args`` where they differ from the image's ``CMD`` (which
        ``shipyard deploy docker`` writes without gRPC or a shared log); else ``None``."""
        return self.serve_command if self.grpc_port or self.log_store else None

    @property
    def log_dir(self) -> str:
        return LOG_DIR

    @property
    def database_url_key(self) -> str:
        return DATABASE_URL_KEY

    @property
    def storage_keys(self) -> tuple[str, ...]:
        return STORAGE_KEYS if self.storage_secret else ()

    @property
    def labels(self) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": self.k8s_name,
            "app.kubernetes.io/version": str(self.version),
            "app.kubernetes.io/component": "model-server",
            "app.kubernetes.io/part-of": "shipyard",
            "app.kubernetes.io/managed-by": "shipyard",
        }

    @property
    def annotations(self) -> dict[str, str]:
        return {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(self.port),
            "prometheus.io/path": "/metrics",
            "shipyard.dev/model": f"{self.name}:{self.version}",
            "shipyard.dev/digest": self.digest,
        }


def target_for(
    archive: Archive, *, digest: str, alias: str, source: ShipyardSource, image: str | None
) -> Target:
    """The ``Target`` of a verified archive (the Python it was trained with, pinned)."""
    m = archive.manifest
    python = m.python if re.fullmatch(r"\d+\.\d+\.\d+", m.python or "") else ""
    if not python:
        python = ".".join(str(p) for p in sys.version_info[:3])
    return Target(
        name=m.name,
        version=m.version,
        alias=alias,
        digest=digest,
        python=python,
        shipyard_version=source.version,
        image=image or f"shipyard-{k8s_name(m.name)}:{m.version}",
    )


def shared(
    target: Target,
    *,
    database_secret: str | None = None,
    artifacts: str | None = None,
    storage_secret: str | None = None,
    log_store: str | None = None,
    grpc_port: int | None = None,
) -> Target:
    """``target`` for replicas that share one registry and one object store: the database
    URL from a Secret, the artifact store and the prediction log's Parquet on S3, the keys
    from a Secret. Nothing given: ``target`` as it was (each pod its own store).

    >>> shared(t, database_secret="shipyard-db", artifacts="s3://models/shipyard",
    ...        storage_secret="shipyard-s3", log_store="s3://models/predlog")  # doctest: +SKIP
    """
    for flag, name in (
        ("--database-url-secret", database_secret),
        ("--storage-secret", storage_secret),
    ):
        if name is not None and (len(name) > 253 or not _SECRET_NAME.fullmatch(name)):
            raise InvalidInput(
                f"{flag} must name a Kubernetes Secret (lowercase letters, digits, '-' and "
                f"'.', at most 253 characters). Got {name!r} instead."
            )
    for flag, url in (("--artifacts", artifacts), ("--log-store", log_store)):
        if url is not None and not re.fullmatch(r"s3a?://[^/\s]+(/\S*)?", url):
            raise InvalidInput(
                f"{flag} must be an s3:// URL every replica reaches, e.g. "
                f"s3://bucket/shipyard. Got {url!r} instead."
            )
    if database_secret and not artifacts:
        raise InvalidInput(
            "--database-url-secret needs --artifacts: the shared registry's archives are in "
            "its artifact store, which every replica must read (e.g. --artifacts "
            "s3://bucket/shipyard, the SHIPYARD_ARTIFACTS of the registry)."
        )
    if artifacts and not database_secret:
        raise InvalidInput(
            "--artifacts is the shared registry's artifact store: pass --database-url-secret "
            "too (without it each pod keeps its own store)."
        )
    if grpc_port is not None and not (1024 <= grpc_port <= 65535 and grpc_port != target.port):
        raise InvalidInput(
            f"--grpc-port must be a port from 1024 to 65535 other than the HTTP port "
            f"{target.port} (the pod runs as a non-root user). Got {grpc_port} instead."
        )
    if storage_secret and not (artifacts or log_store):
        raise InvalidInput(
            "--storage-secret holds an object store's keys: pass --artifacts or --log-store "
            "(an s3:// URL) too."
        )
    return replace(
        target,
        database_secret=database_secret,
        artifacts=artifacts,
        storage_secret=storage_secret,
        log_store=log_store,
        grpc_port=grpc_port if grpc_port is not None else target.grpc_port,
    )


def docker_files(
    archive: Archive, data: bytes, target: Target, source: ShipyardSource, work: Path
) -> dict[str, bytes | Path]:
    """The build context: Dockerfile, .dockerignore, README, the model's pinned lock (its
    ``runtime.lock``, or an older archive's ``requirements.lock``; without Shipyard, installed
    after it), the archive, the entrypoint and, from a checkout, Shipyard's wheel (built into
    ``work``)."""
    lock, _ = model_lock(archive)
    header = f"# python {lock.python} on {lock.platform}\n" if lock.python else ""
    pins = header + "\n".join(lock.requirements(skip=("shipyard",))) + "\n"
    files: dict[str, bytes | Path] = {"requirements.lock": pins.encode()}
    if source.checkout is not None:
        wheel = _build_wheel(source.checkout, work)
        target = _with_wheel(target, wheel.name)
        files[f"wheels/{wheel.name}"] = wheel
    files["Dockerfile"] = render("Dockerfile.j2", t=target).encode()
    files[".dockerignore"] = render("dockerignore.j2", t=target).encode()
    files["docker-entrypoint.sh"] = render("docker-entrypoint.sh.j2", t=target).encode()
    files["README.md"] = render("README-docker.md.j2", t=target).encode()
    files[f"model/{target.archive}"] = data
    return files


def k8s_files(target: Target) -> dict[str, bytes | Path]:
    """Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget and a README."""
    return {
        "deployment.yaml": render(
            "deployment.yaml.j2", t=target, container_name="model-server"
        ).encode(),
        "service.yaml": render("service.yaml.j2", t=target).encode(),
        "hpa.yaml": render("hpa.yaml.j2", t=target).encode(),
        "pdb.yaml": render("pdb.yaml.j2", t=target).encode(),
        "README.md": render("README-k8s.md.j2", t=target).encode(),
    }


def kserve_files(target: Target) -> dict[str, bytes | Path]:
    """A KServe ``ServingRuntime`` running the image (Open Inference Protocol v2 over HTTP
    and gRPC), an ``InferenceService`` of the ``shipyard`` model format on it, and a README."""
    target = replace(target, grpc_port=target.grpc_port or KSERVE_GRPC_PORT)
    return {
        "servingruntime.yaml": render(
            "servingruntime.yaml.j2", t=target, container_name="kserve-container"
        ).encode(),
        "inferenceservice.yaml": render("inferenceservice.yaml.j2", t=target).encode(),
        "README.md": render("README-kserve.md.j2", t=target).encode(),
    }


def _with_wheel(target: Target, wheel_name: str) -> Target:
    return replace(target, wheel_name=wheel_name)


def _build_wheel(checkout: Path, work: Path) -> Path:
    """Build Shipyard's wheel from ``checkout`` into ``work`` (pip, as configured here)."""
    out = work / "wheel"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(out),
            str(checkout),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    wheels = sorted(out.glob("shipyard-*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no wheel was built"])[-1]
        raise MissingDependency(f"Cannot build Shipyard's wheel from {checkout}: {last}")
    return wheels[-1]


def write_files(out: Path, files: dict[str, bytes | Path], *, force: bool) -> list[Path]:
    """Write ``files`` (relative path -> bytes, or a file to copy) into ``out``: all or
    nothing. ``out`` must be absent or empty unless ``force`` (then these files replace
    theirs; other files stay)."""
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"'{out}' exists and is not a folder.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise AlreadyExists(
            f"'{out}' already has files: choose an empty folder or pass --force to replace "
            "the files this command writes."
        )
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".shipyard-deploy-", dir=out))
    try:
        for rel, content in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, path)
            else:
                path.write_bytes(content)
            if rel.endswith(".sh"):
                path.chmod(0o755)
        written = []
        for rel in files:
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).replace(dest)
            written.append(dest)
    except BaseException:
        if made:
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written
