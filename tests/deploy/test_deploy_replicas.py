"""``shipyard deploy k8s`` for replicas sharing one registry and one object store: the
database URL and the storage keys from Secrets, each pod named after itself, the prediction
log's Parquet on the shared store and its WAL on the pod's own volume; checked with
Kubernetes' own schemas (kubernetes-validate, strict), and bad options refused in one
sentence before anything is written (by ``deploy kserve`` too, which takes the same options)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from typer.main import get_command

from cli_support import cli, point_cli_at
from deploy_support import Pod, Registered
from object_stores import SESSION_BUCKET, S3Endpoint
from shipyard.cli import app
from shipyard.client import Client
from shipyard.deploy import STORAGE_KEYS
from shipyard.predlog import query
from shipyard.settings import Settings

K8S_VERSION = "1.30.0"
MANIFESTS = ("deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml")


def _deployment(out: Path) -> dict[str, Any]:
    docs = {}
    for name in MANIFESTS:
        for doc in yaml.safe_load_all((out / name).read_text()):
            if doc:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
                docs[doc["kind"]] = doc
    return docs["Deployment"]


def _k8s(
    capsys: pytest.CaptureFixture[str], out: Path, *options: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``shipyard deploy k8s churn@staging OUT OPTIONS``: (the pod spec, its container)."""
    code, _, err = cli(capsys, "deploy", "k8s", "churn@staging", str(out), *options)
    assert code == 0, err
    pod = _deployment(out)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_replicas_share_the_registry_and_the_store_through_secrets(
    registered: Registered, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "k8s"
    pod, container = _k8s(
        capsys,
        out,
        *("--database-url-secret", "shipyard-db", "--artifacts", "s3://models/shipyard"),
        *("--storage-secret", "shipyard-s3", "--log-store", "s3://models/predlog"),
    )
    env = _env(container)
    assert env["SHIPYARD_SERVE_TOKEN"] == {
        "secretKeyRef": {"name": "churn-serve-token", "key": "token"}
    }
    assert env["SHIPYARD_REPLICA"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["SHIPYARD_DB_URL"] == {
        "secretKeyRef": {"name": "shipyard-db", "key": "database-url"}
    }
    assert env["SHIPYARD_ARTIFACTS"] == "s3://models/shipyard"
    for key in STORAGE_KEYS:  # the names botocore and Settings read, each optional
        assert env[key] == {"secretKeyRef": {"name": "shipyard-s3", "key": key, "optional": True}}
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "SHIPYARD_STORAGE_OPTIONS"} <= set(env)

    args = container["args"]  # the image's command, with the log's options
    assert args[:2] == ["shipyard", "serve"]
    assert args[args.index("--models") + 1] == "churn"
    assert args[args.index("--alias") + 1] == "staging"
    assert args[args.index("--log-store") + 1] == "s3://models/predlog"
    log_dir = args[args.index("--log-dir") + 1]
    serve = get_command(app).commands["serve"]  # type: ignore[attr-defined]
    known = {flag for param in serve.params for flag in param.opts}
    assert {a for a in args if a.startswith("--")} <= known  # shipyard serve takes them all
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["predlog"] == log_dir == "/var/lib/shipyard/predlog"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["predlog"] == {"name": "predlog", "emptyDir": {}}

    readme = (out / "README.md").read_text()
    assert "kubectl create secret generic shipyard-db --from-literal=database-url=" in readme
    assert "kubectl create secret generic shipyard-s3" in readme
    assert "s3://models/predlog" in readme and "s3://models/shipyard" in readme


def test_the_default_manifests_keep_one_store_per_pod_and_name_the_replica(
    registered: Registered, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "k8s"
    pod, container = _k8s(capsys, out)
    assert set(_env(container)) == {"SHIPYARD_SERVE_TOKEN", "SHIPYARD_REPLICA"}
    assert "args" not in container  # the image's CMD
    assert {v["name"] for v in pod["volumes"]} == {"shipyard-home", "tmp"}
    assert "--database-url-secret" in (out / "README.md").read_text()


def test_a_shared_log_store_alone_keeps_the_baked_model(
    registered: Registered, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, container = _k8s(capsys, tmp_path / "k8s", "--log-store", "s3://logs/predlog")
    assert set(_env(container)) == {"SHIPYARD_SERVE_TOKEN", "SHIPYARD_REPLICA"}
    assert container["args"][-2:] == ["--log-store", "s3://logs/predlog"]


@pytest.mark.parametrize("target", ["k8s", "kserve"])
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--log-store", "/data/predlog"], "--log-store must be an s3:// URL"),
        (["--log-store", "https://store.example/x"], "--log-store must be an s3:// URL"),
        (["--log-store", "s3://"], "--log-store must be an s3:// URL"),
        (
            ["--database-url-secret", "db", "--artifacts", "/mnt/artifacts"],
            "--artifacts must be an s3:// URL",
        ),
        (["--database-url-secret", "db"], "--database-url-secret needs --artifacts"),
        (["--artifacts", "s3://models/x"], "pass --database-url-secret too"),
        (["--storage-secret", "s3-keys"], "--storage-secret holds an object store's keys"),
        (
            ["--database-url-secret", "Shipyard_DB", "--artifacts", "s3://m/x"],
            "--database-url-secret must name a Kubernetes Secret",
        ),
        (
            ["--storage-secret", "keys;rm", "--log-store", "s3://m/x"],
            "--storage-secret must name a Kubernetes Secret",
        ),
    ],
)
def test_bad_replica_options_are_one_sentence_and_write_nothing(
    registered: Registered,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    options: list[str],
    message: str,
    target: str,
) -> None:
    out = tmp_path / target
    code, stdout, err = cli(capsys, "deploy", target, "churn@staging", str(out), *options)
    assert code == 2, err
    assert message in err and err.count("\n") == 1 and stdout == ""  # one line, nothing else
    assert not out.exists()


def test_two_pods_as_the_manifest_describes_them_share_one_registry_and_one_log(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pg_schema_url: str,
    moto_s3: S3Endpoint,
    fitted_pipeline: Any,
    training_data: Any,
) -> None:
    """Two ``shipyard serve`` processes started as kubelet would start the Deployment's
    pods: the environment from the manifest (Secrets and the pod's name filled in), the
    image's entrypoint (``deploy bootstrap``), then the container's ``args``; on the real
    PostgreSQL and an S3 server (moto). Both answer, name themselves in ``/metrics``, and
    their prediction logs end up as one table on the store."""
    prefix = f"deploy-{uuid.uuid4().hex[:8]}"
    moto_s3.make_bucket(SESSION_BUCKET)
    artifacts, log_store = (moto_s3.url(SESSION_BUCKET, f"{prefix}/{p}") for p in ("a", "log"))
    point_cli_at(monkeypatch, pg_schema_url, tmp_path, toml=None)
    for name, value in moto_s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", artifacts)
    archive = tmp_path / "churn-v1.zip"  # baked into the image by deploy docker
    X, y, _, _ = training_data
    c = Client(Settings()).open()  # the shared registry, where churn is registered
    try:
        c.register(fitted_pipeline, name="churn", X_train=X, y_train=y, onnx=False)
        c.promote("churn", 1, to="staging")
        mv = c.registry.resolve("churn@staging")
        archive.write_bytes(c.store.artifacts.get(mv.archive_key))
    finally:
        c.close()

    _, container = _k8s(
        capsys,
        tmp_path / "k8s",
        *("--database-url-secret", "shipyard-db", "--artifacts", artifacts),
        *("--storage-secret", "shipyard-s3", "--log-store", log_store),
    )
    token = "sy_replica-token-from-a-secret"
    secrets = {
        "churn-serve-token": {"token": token},
        "shipyard-db": {"database-url": pg_schema_url},
        "shipyard-s3": {k: v for k, v in moto_s3.env().items() if k in STORAGE_KEYS},
    }
    pods = [Pod(f"churn-7d9f-{n}", tmp_path, container, secrets) for n in ("a", "b")]
    try:
        for pod in pods:  # one after the other: the first start adds the serving token
            # the registry's own version: nothing added
            assert "Verified churn v1" in pod.bootstrap(archive, mv.digest)
        for pod in pods:
            pod.start()
        for pod in pods:
            pod.wait()
        ids: list[str] = []
        for pod in pods:
            for _ in range(3):
                answer = httpx.post(
                    f"{pod.url}/models/churn/predict",
                    json={"records": [GOOD]},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
                assert answer.status_code == 200, answer.text
                ids += answer.json()["prediction_ids"]
            metrics = httpx.get(f"{pod.url}/metrics", timeout=10).text
            assert f'shipyard_replica_info{{replica="{pod.name}"}} 1.0' in metrics
    finally:
        for pod in pods:
            pod.stop()  # compacts its WAL to the store on the way out
    for pod in pods:
        assert "Traceback" not in pod.err.read_text(), pod.err.read_text()
        assert not list((pod.home / "predlog" / "wal").glob("*.wal"))
    logged = query(log_store, "SELECT prediction_id FROM predictions", model="churn")
    assert sorted(logged["prediction_id"]) == sorted(ids) and len(set(ids)) == 6


GOOD = {"age": 40, "income": 52_000.0, "tenure": 2.5, "plan": "pro"}


def test_a_grpc_port_is_served_named_in_the_service_and_checked(
    registered: Registered, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "k8s"
    _, container = _k8s(capsys, out, "--grpc-port", "9000")
    assert container["args"][-2:] == ["--grpc-port", "9000"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "http": 8080,
        "h2c": 9000,
    }
    (service,) = [d for d in yaml.safe_load_all((out / "service.yaml").read_text()) if d]
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["grpc"]["targetPort"] == 9000 and ports["grpc"]["port"] == 9000
    assert ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"
    assert "port 9000" in (out / "README.md").read_text()
    for bad in ("8080", "80", "70000"):
        code, stdout, err = cli(
            capsys, "deploy", "k8s", "churn@staging", str(tmp_path / bad), "--grpc-port", bad
        )
        assert code == 2 and f"Got {bad} instead" in err and stdout == ""
        assert not (tmp_path / bad).exists()
