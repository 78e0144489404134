"""``shipyard env create|check`` and ``shipyard deploy docker|k8s|kserve|bootstrap``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from shipyard.cli._app import (
    JsonOption,
    app,
    client,
    console,
    fail,
    print_json,
    row_progress,
    table,
)
from shipyard.cli._options import Installer
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.client import Client
    from shipyard.deploy import Lock
    from shipyard.packaging import Archive

env_app = typer.Typer(
    help="Virtual environments with what a model needs (its archive's runtime.lock).",
    no_args_is_help=True,
)
deploy_app = typer.Typer(
    help="Deployment files for a model version: a container image, Kubernetes, KServe.",
    no_args_is_help=True,
)
app.add_typer(env_app, name="env")
app.add_typer(deploy_app, name="deploy")


_MODEL = typer.Argument(..., help="Model reference: churn@production, churn:3 (or churn 3).")
TOKEN_ENV = "SHIPYARD_SERVE_TOKEN"


def _archive(c: Client, model: str, version: int | None = None) -> Archive:
    return c.registry.open_archive(model, version)


def _lock(archive: Archive, *, say: bool = True) -> Lock:
    """The archive's runtime lock, or (an older archive) its full lock, saying so (``say``)."""
    from shipyard.deploy import model_lock
    from shipyard.packaging import RUNTIME_LOCK

    lock, member = model_lock(archive)
    if member != RUNTIME_LOCK and say:
        console.print(
            f"[yellow]Note:[/] the archive of {escape(archive.manifest.name)} "
            f"v{archive.manifest.version} predates {RUNTIME_LOCK}: using its {member}, every "
            "package of the environment it was registered from.",
            soft_wrap=True,
        )
    return lock


@env_app.command("create")
def env_create_cmd(
    ctx: typer.Context,
    model: str = _MODEL,
    args: list[str] = typer.Argument(
        ...,
        metavar="[VERSION] DIR",
        help="The folder to make (absent or empty), after a version for a bare model name.",
    ),
    installer: Installer = typer.Option(
        Installer.auto,
        "--installer",
        help="pip, or uv (seconds instead of minutes), both configured as pip is here "
        "(index, find-links, constraints). auto: uv when it is beside Shipyard or on PATH "
        "and pip's configuration translates to it, else pip.",
    ),
) -> None:
    """Create a virtual environment in DIR (new or empty) with the packages the model needs
    (its runtime.lock; an older archive's whole requirements.lock) and Shipyard; exit 1
    naming the packages that could not be had."""
    from shipyard.deploy import create_env

    if len(args) not in (1, 2):
        raise InvalidInput("Give MODEL DIR (churn@production env/) or NAME VERSION DIR.")
    version = None
    if len(args) == 2:
        if not args[0].isdigit():
            raise InvalidInput(f"Invalid version {args[0]!r}: versions are numbers from 1.")
        version = int(args[0])
    target = Path(args[-1])
    archive = _archive(client(ctx, notify=False), model, version)
    m = archive.manifest
    lock = _lock(archive)
    with row_progress() as progress:
        task = progress.add_task("Preparing", total=None)

        def report(message: str, done: int, total: int) -> None:
            progress.update(task, description=escape(message), completed=done, total=total)

        result = create_env(
            lock,
            target,
            label=f"{m.name} v{m.version}",
            progress=report,
            installer=installer.value,
        )
    console.print(
        f"Created {result.path} for {escape(m.name)} v{m.version}: Python {result.python}, "
        f"{result.installed} locked packages, Shipyard from {escape(result.shipyard)}, "
        f"installed with {result.installer} ({result.seconds:.0f} s).",
        soft_wrap=True,
    )
    for note in result.notes:
        console.print(f"[yellow]Note:[/] {escape(note)}", soft_wrap=True)
    if result.unavailable:
        table(
            "Packages that could not be had",
            ["package", "version", "why"],
            [(u.name, u.version, u.reason) for u in result.unavailable],
        )
        fail(
            f"{len(result.unavailable)} package(s) of the lock could not be installed; the "
            f"environment in {result.path} has the rest."
        )
    console.print(f"Score with: {escape(str(result.path / 'bin' / 'shipyard'))} score ...")


@env_app.command("check")
def env_check_cmd(
    ctx: typer.Context,
    model: str = _MODEL,
    python: str = typer.Option(
        None, "--python", help="Check this interpreter's environment (default: the running one)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Compare an environment with the model's runtime.lock (an older archive's
    requirements.lock): missing packages and different versions (exit 1 when there are any)
    and extra ones (listed only)."""
    from shipyard.deploy import compare, installed

    archive = _archive(client(ctx, notify=False), model)
    lock = _lock(archive, say=not as_json)
    version, packages = installed(python)
    diff = compare(lock, version, packages)
    m = archive.manifest
    if as_json:
        print_json({"model": m.name, "version": m.version, **diff.to_dict()})
        raise typer.Exit(0 if diff.ok else 1)
    rows = [(n, v, "missing") for n, v in sorted(diff.missing.items())]
    rows += [(n, f"{lv} (installed {iv})", "different") for n, (lv, iv) in diff.different.items()]
    if diff.python_differs:
        rows.insert(0, ("python", f"{diff.lock_python} (running {diff.python})", "different"))
    if rows:
        table(
            f"Environment against {m.name} v{m.version}'s lock", ["package", "lock", "state"], rows
        )
        fail(
            f"The environment differs from the lock of {m.name} v{m.version}: "
            f"{len(diff.missing)} missing, {len(diff.different)} different"
            + (", another Python" if diff.python_differs else "")
            + f"; 'shipyard env create {m.name}:{m.version} DIR' makes a matching one."
        )
    console.print(
        f"The environment matches the lock of {escape(m.name)} v{m.version} "
        f"({len(lock.pins)} packages; {len(diff.extra)} more installed)."
    )


def _deploy(
    ctx: typer.Context,
    kind: str,
    model: str,
    out: Path,
    image: str | None,
    force: bool,
    shared_store: dict[str, Any] | None = None,
) -> None:
    import tempfile

    from shipyard.deploy import (
        docker_files,
        k8s_files,
        kserve_files,
        shared,
        shipyard_source,
        target_for,
        write_files,
    )

    c = client(ctx, notify=False)
    mv = c.registry.resolve(model)
    archive = _archive(c, mv.model_name, mv.version)  # that version, even if the alias moves
    alias = model.split("@", 1)[1] if "@" in model else "production"
    source = shipyard_source()
    target = target_for(archive, digest=mv.digest, alias=alias, source=source, image=image)
    target = shared(target, **(shared_store or {}))  # checked before anything is written
    with tempfile.TemporaryDirectory(prefix="shipyard-deploy-") as work:
        if kind == "docker":
            data = c.store.artifacts.get(mv.archive_key)
            files = docker_files(archive, data, target, source, Path(work))
        elif kind == "k8s":
            files = k8s_files(target)
        else:
            files = kserve_files(target)
        written = write_files(out, files, force=force)
    console.print(
        f"Wrote {len(written)} files for {escape(mv.model_name)} v{mv.version} into {out}: "
        + ", ".join(escape(str(p.relative_to(out))) for p in written)
        + f". See {out / 'README.md'}."
    )


_OUT = typer.Argument(..., help="The folder to write (absent or empty; --force replaces).")
_IMAGE = typer.Option(None, "--image", help="The image name (default: shipyard-NAME:VERSION).")
_FORCE = typer.Option(False, "--force", help="Write into a folder that has files already.")


_TARGET_HELP = {
    "docker": "A Docker build context: Dockerfile (pinned, non-root, HEALTHCHECK), the archive, "
    "its entrypoint (digest check), .dockerignore and README.",
    "k8s": "Kubernetes manifests: Deployment, Service, HorizontalPodAutoscaler, "
    "PodDisruptionBudget.",
    "kserve": "KServe: a ServingRuntime running the image (Open Inference Protocol v2 over HTTP "
    "and gRPC) and an InferenceService of the 'shipyard' model format on it.",
}
_DATABASE_URL_SECRET = typer.Option(
    None,
    "--database-url-secret",
    help="Share one registry: the Secret whose 'database-url' key is SHIPYARD_DB_URL "
    "(with --artifacts). Default: each pod its own store, serving the baked version.",
)
_ARTIFACTS = typer.Option(
    None, "--artifacts", help="The shared registry's artifact store (s3://...)."
)
_STORAGE_SECRET = typer.Option(
    None,
    "--storage-secret",
    help="The Secret holding the object store's keys: AWS_ACCESS_KEY_ID, "
    "AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, "
    "SHIPYARD_STORAGE_OPTIONS (each optional).",
)
_GRPC_PORT = typer.Option(
    None,
    "--grpc-port",
    help="Also serve the Open Inference Protocol over gRPC (h2c) on this container port, "
    "named 'grpc' in the Service (kserve: default 8081).",
)
_LOG_STORE = typer.Option(
    None,
    "--log-store",
    help="The prediction log's Parquet on an object store every replica shares "
    "(s3://...); the WAL stays on each pod's volume. Default: in each pod's store.",
)


def _add_image_target(kind: str) -> None:
    """Register ``shipyard deploy KIND MODEL OUT`` for a target without pods (docker)."""

    def command(
        ctx: typer.Context,
        model: str = _MODEL,
        out: Path = _OUT,
        image: str = _IMAGE,
        force: bool = _FORCE,
    ) -> None:
        _deploy(ctx, kind, model, out, image, force)

    command.__doc__ = _TARGET_HELP[kind]
    deploy_app.command(kind)(command)


def _add_cluster_target(kind: str) -> None:
    """Register ``shipyard deploy KIND MODEL OUT`` for a cluster target (k8s, kserve): the
    image's options and those of replicas sharing one registry and one object store."""

    def command(
        ctx: typer.Context,
        model: str = _MODEL,
        out: Path = _OUT,
        image: str = _IMAGE,
        force: bool = _FORCE,
        database_url_secret: str = _DATABASE_URL_SECRET,
        artifacts: str = _ARTIFACTS,
        storage_secret: str = _STORAGE_SECRET,
        log_store: str = _LOG_STORE,
        grpc_port: int = _GRPC_PORT,
    ) -> None:
        shared_store: dict[str, Any] = {
            "database_secret": database_url_secret,
            "artifacts": artifacts,
            "storage_secret": storage_secret,
            "log_store": log_store,
            "grpc_port": grpc_port,
        }
        _deploy(ctx, kind, model, out, image, force, shared_store)

    command.__doc__ = _TARGET_HELP[kind]
    deploy_app.command(kind)(command)


_add_image_target("docker")
_add_cluster_target("k8s")
_add_cluster_target("kserve")


@deploy_app.command("bootstrap")
def deploy_bootstrap_cmd(
    ctx: typer.Context,
    archive: Path = typer.Argument(..., help="The archive baked into the image."),
    name: str = typer.Option(..., "--name"),
    version: int = typer.Option(..., "--version", min=1),
    alias: str = typer.Option("production", "--alias"),
    digest: str = typer.Option(..., "--digest", help="The digest the registry recorded."),
    no_token: bool = typer.Option(
        False, "--no-token", help=f"Start without {TOKEN_ENV} (the server runs --no-auth)."
    ),
) -> None:
    """Verify a baked archive and record it in this container's store (the image's
    entrypoint runs this before 'shipyard serve')."""
    from shipyard.deploy import install_archive

    token = os.environ.get(TOKEN_ENV) or None
    if token is None and not no_token:
        fail(
            f"Set {TOKEN_ENV} to the bearer token clients will send (from a secret, e.g. "
            f"'docker run -e {TOKEN_ENV}=...' or a Kubernetes secret); it is never baked in."
        )
    try:
        data = archive.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"Cannot read the archive '{archive}': {exc.strerror}.") from exc
    c = client(ctx, notify=False)
    new = install_archive(
        c.store,
        data,
        name=name,
        version=version,
        digest=digest,
        alias=alias,
        actor=c.user,
        token=token,
    )
    state = "Recorded" if new else "Verified"
    console.print(f"{state} {escape(name)} v{version} ({digest[:19]}...) as @{escape(alias)}.")
