"""``shipyard deploy kserve``: a ServingRuntime and an InferenceService, read strictly into
KServe's own generated models (``kserve_models.py``, in KServe's venv) with the pod KServe
makes of them checked by Kubernetes' schemas (kubernetes-validate, strict); the Open Inference
Protocol v2 declared on both; the options of replicas sharing one store, rendered by the same
templates as ``deploy k8s`` (bad ones: ``test_deploy_replicas.py``, for both targets); and the
runtime's container run as kubelet runs it, answering KServe's own gRPC client on its ``h2c``
port."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from cli_support import cli
from deploy_support import Pod, Registered
from kserve_venv import run_driver
from shipyard.deploy import STORAGE_KEYS

K8S_VERSION = "1.30.0"
MODELS = Path(__file__).with_name("kserve_models.py")
GRPC_DRIVER = Path(__file__).parents[1] / "serving" / "kserve_grpc_driver.py"
TYPES = {"age": "INT64", "income": "FP64", "tenure": "FP64", "plan": "BYTES"}
SHARED = (
    *("--database-url-secret", "shipyard-db", "--artifacts", "s3://models/shipyard"),
    *("--storage-secret", "shipyard-s3", "--log-store", "s3://models/predlog"),
)
#: The predictor's fields that are not its pod's (KServe's ComponentExtensionSpec, the model).
NOT_POD = {"minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "model"}


def _kserve(
    capsys: pytest.CaptureFixture[str], out: Path, *options: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``shipyard deploy kserve churn@staging OUT OPTIONS``: (the runtime, the service)."""
    code, _, err = cli(capsys, "deploy", "kserve", "churn@staging", str(out), *options)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "inferenceservice.yaml",
        "servingruntime.yaml",
    ]
    (runtime,) = (d for d in yaml.safe_load_all((out / "servingruntime.yaml").read_text()) if d)
    (isvc,) = (d for d in yaml.safe_load_all((out / "inferenceservice.yaml").read_text()) if d)
    return runtime, isvc


def _pod(runtime: dict[str, Any], isvc: dict[str, Any]) -> dict[str, Any]:
    """The pod KServe makes of the two: the runtime's containers and volumes, the
    predictor's pod fields."""
    predictor = isvc["spec"]["predictor"]
    spec = {k: v for k, v in predictor.items() if k not in NOT_POD}
    spec |= {k: runtime["spec"][k] for k in ("containers", "volumes")}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "churn"}, "spec": spec}


def _arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def _protocol_problems(
    runtime: dict[str, Any], isvc: dict[str, Any], protocols: list[str]
) -> list[str]:
    """What keeps the pair from speaking the Open Inference Protocol v2 on KServe
    (``protocols``: the names KServe's ``PredictorProtocol`` knows)."""
    model = isvc["spec"]["predictor"]["model"]
    declared = runtime["spec"].get("protocolVersions", [])
    (container,) = runtime["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    problems = [f"{p!r} is not a protocol KServe knows" for p in declared if p not in protocols]
    # Without protocolVersion KServe takes a model for v1 (ModelSpec.GetProtocol).
    if model.get("protocolVersion") != "v2":
        problems.append(f"the model's protocolVersion is {model.get('protocolVersion')!r}")
    # KServe refuses a runtime that does not list the model's protocol.
    if model.get("protocolVersion") not in declared:
        problems.append("the runtime does not list the model's protocolVersion")
    if "grpc-v2" not in declared or "h2c" not in ports:
        problems.append("the runtime does not declare gRPC v2 with its h2c port")
    elif _arg(container["args"], "--grpc-port") != str(ports["h2c"]):
        problems.append("shipyard serve's --grpc-port is not the h2c port")
    return problems


def test_deploy_kserve_files_are_what_kserve_and_kubernetes_read(
    kserve_python: Path,
    registered: Registered,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    own = _kserve(capsys, tmp_path / "own", "--image", "reg.example/churn:1")
    shared = _kserve(capsys, tmp_path / "shared", *SHARED)
    runtime, isvc = own
    # Misspelt fields, one where KServe's models have it and one in a core type: the check
    # reports both (KServe's own deserializer would drop them without a word).
    typo_isvc = copy.deepcopy(isvc)
    model = typo_isvc["spec"]["predictor"]["model"]
    model["protocolVersoin"] = model.pop("protocolVersion")
    typo_runtime = copy.deepcopy(runtime)
    typo_runtime["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/"}
    documents = [*own, *shared, typo_isvc, typo_runtime]
    report = run_driver(kserve_python, MODELS, {"documents": documents})

    problems = [d["problems"] for d in report["documents"]]
    assert problems[:4] == [[], [], [], []]
    typo = "InferenceService.spec.predictor.model.protocolVersoin: not a field of V1beta1ModelSpec"
    assert problems[4] == [typo]
    assert len(problems[5]) == 1 and "readinessProbe.httpGett" in problems[5][0]
    for pair in (own, shared):
        kubernetes_validate.validate(_pod(*pair), K8S_VERSION, strict=True)

    assert runtime["metadata"]["name"] == isvc["spec"]["predictor"]["model"]["runtime"]
    assert runtime["metadata"]["name"] == "shipyard-churn"
    formats = runtime["spec"]["supportedModelFormats"]
    assert formats == [{"name": "shipyard", "autoSelect": True}]  # no priority: see README
    assert isvc["spec"]["predictor"]["model"]["modelFormat"] == {"name": "shipyard"}
    (container,) = runtime["spec"]["containers"]
    assert container["name"] == "kserve-container"  # the container KServe merges the model into
    assert container["image"] == "reg.example/churn:1"
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "512Mi"}
    predictor = isvc["spec"]["predictor"]
    assert predictor["securityContext"]["runAsNonRoot"] is True
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 10)
    annotations = isvc["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == "Standard"  # two ports
    assert annotations["prometheus.io/path"] == "/metrics"
    readme = (tmp_path / "own" / "README.md").read_text()
    assert "kubectl apply -f servingruntime.yaml -f inferenceservice.yaml" in readme
    assert "/v2/models/churn/infer" in readme


def test_deploy_kserve_declares_the_open_inference_protocol_v2(
    kserve_python: Path,
    registered: Registered,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    runtime, isvc = _kserve(capsys, tmp_path / "kserve")
    report = run_driver(kserve_python, MODELS, {"documents": []})
    protocols = report["protocols"]
    assert _protocol_problems(runtime, isvc, protocols) == []
    assert isvc["spec"]["predictor"]["model"]["protocolVersion"] == "v2"
    assert runtime["spec"]["protocolVersions"] == ["v2", "grpc-v2"]
    (container,) = runtime["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "h2c": report["grpc_port"]}  # KServe's default gRPC port
    assert _arg(container["args"], "--port") == "8080"

    # Each way of getting it wrong is caught.
    def broken(change: str) -> list[str]:
        bad_runtime, bad_isvc = copy.deepcopy(runtime), copy.deepcopy(isvc)
        model, spec = bad_isvc["spec"]["predictor"]["model"], bad_runtime["spec"]
        if change == "no protocolVersion":
            del model["protocolVersion"]
        elif change == "protocolVersion v1":
            model["protocolVersion"] = "v1"
        elif change == "no protocolVersions":
            del spec["protocolVersions"]
        elif change == "runtime without v2":
            spec["protocolVersions"] = ["grpc-v2"]
        elif change == "runtime without grpc-v2":
            spec["protocolVersions"] = ["v2"]
        elif change == "an unknown protocol":
            spec["protocolVersions"] = ["v2", "grpc-v3"]
        return _protocol_problems(bad_runtime, bad_isvc, protocols)

    for change in (
        "no protocolVersion",
        "protocolVersion v1",
        "no protocolVersions",
        "runtime without v2",
        "runtime without grpc-v2",
        "an unknown protocol",
    ):
        assert broken(change), change


def test_deploy_kserve_takes_the_replica_options_of_deploy_k8s(
    registered: Registered, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    runtime, _ = _kserve(capsys, tmp_path / "kserve", *SHARED)
    code, _, err = cli(capsys, "deploy", "k8s", "churn@staging", str(tmp_path / "k8s"), *SHARED)
    assert code == 0, err
    deployment = yaml.safe_load((tmp_path / "k8s" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (k8s,) = pod["containers"]
    (kserve,) = runtime["spec"]["containers"]
    assert kserve["env"] == k8s["env"] and kserve["volumeMounts"] == k8s["volumeMounts"]
    assert runtime["spec"]["volumes"] == pod["volumes"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in kserve["env"]}
    assert env["SHIPYARD_REPLICA"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["SHIPYARD_DB_URL"] == {
        "secretKeyRef": {"name": "shipyard-db", "key": "database-url"}
    }
    assert env["SHIPYARD_ARTIFACTS"] == "s3://models/shipyard"
    for key in STORAGE_KEYS:  # each key optional
        assert env[key] == {"secretKeyRef": {"name": "shipyard-s3", "key": key, "optional": True}}
    args = kserve["args"]
    assert _arg(args, "--log-store") == "s3://models/predlog"
    assert _arg(args, "--log-dir") == "/var/lib/shipyard/predlog"
    grpc = args.index("--grpc-port")
    assert args[:grpc] + args[grpc + 2 :] == k8s["args"]  # the same command, with gRPC
    readme = (tmp_path / "kserve" / "README.md").read_text()
    assert "kubectl create secret generic shipyard-db --from-literal=database-url=" in readme
    assert "kubectl create secret generic shipyard-s3" in readme
    assert "s3://models/predlog" in readme and "s3://models/shipyard" in readme


@pytest.mark.slow  # two processes of Shipyard (bootstrap, serve) and KServe's client
def test_the_runtime_container_run_as_kubelet_runs_it_answers_kserve_grpc_client(
    kserve_python: Path,
    registered: Registered,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fitted_pipeline: Any,
) -> None:
    """The ServingRuntime's container as a process: its env (the token from its Secret, the
    pod's name), the image's entrypoint (``deploy bootstrap``), then its ``args``; ready on
    its readiness path, and KServe's ``InferenceGRPCClient`` on its ``h2c`` port gets the
    model's answers."""
    runtime, _ = _kserve(capsys, tmp_path / "kserve")
    (container,) = runtime["spec"]["containers"]
    client = registered.client
    mv = client.registry.resolve("churn@staging")
    archive = tmp_path / "churn-v1.zip"  # baked into the image by deploy docker
    archive.write_bytes(client.store.artifacts.get(mv.archive_key))
    token = "sy_kserve-token-from-a-secret"
    secrets = {"churn-serve-token": {"token": token}}
    pod = Pod("churn-predictor-5c8d-x", tmp_path, container, secrets)
    assert "Recorded churn v1" in pod.bootstrap(archive, mv.digest)  # the pod's own store
    assert pod.grpc_port is not None
    rows = registered.rows.head(5)
    try:
        pod.start()
        pod.wait()
        spec = {
            "address": f"127.0.0.1:{pod.grpc_port}",
            "rows": {c: rows[c].tolist() for c in rows.columns},
            "types": TYPES,
            "token": token,
        }
        report = run_driver(kserve_python, GRPC_DRIVER, spec)
    finally:
        pod.stop()
    assert report["live"] and report["ready"] and report["model_ready"]
    assert report["default"]["outputs"]["predict"] == fitted_pipeline.predict(rows).tolist()
    assert report["no_token"]["code"] == "UNAUTHENTICATED"
