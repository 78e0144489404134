"""Reads YAML documents into KServe's generated models, strictly; runs in the KServe venv.

The ``kserve`` package's models (``V1beta1InferenceService``, ``V1alpha1ServingRuntime``, ...)
are generated from KServe's OpenAPI schema; the core types they hold (``V1Container``,
``V1Volume``, ...) are ``kubernetes``' models, pydantic ones that forbid unknown fields and
take strict types. KServe's own models do not: their deserializer keeps the keys it knows
and drops the rest silently, so a misspelt field would pass. Here every key of a KServe model
must be one of its fields (the path of each one that is not is reported) and each primitive
of the declared type, the core types go through ``model_validate`` (strict), and the whole
model written back must give every input value unchanged. The test runs this script
with the venv's Python (``kserve_venv.run_driver``), passing ``{"documents": [...]}``, and
reads ``{"documents": [{"kind", "problems"}], "protocols": [...], "grpc_port": ...}``.
Not collected by pytest, and it imports nothing from Shipyard.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import kserve.models
import kubernetes.client.models
import pydantic
from kserve import ApiClient
from kserve.constants import constants

_PRIMITIVES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": (int, float),
    "bool": bool,
    "object": object,
}


def _model(name: str) -> Any:
    """A generated model class: KServe's own, else Kubernetes' (``V1Container``, ...)."""
    found = getattr(kserve.models, name, None) or getattr(kubernetes.client.models, name, None)
    if found is None:
        raise LookupError(f"no generated model named {name}")
    return found


def _read(data: Any, kind: str, path: str, problems: list[str]) -> Any:
    """``data`` as the type ``kind`` of the generated models, recording each problem."""
    if data is None:
        return None
    if kind.startswith("list["):
        if not isinstance(data, list):
            problems.append(f"{path}: a {kind} is a list, not {data!r}")
            return None
        item = kind[5:-1]
        return [_read(v, item, f"{path}[{i}]", problems) for i, v in enumerate(data)]
    if kind.startswith("dict("):
        if not isinstance(data, dict):
            problems.append(f"{path}: a {kind} is a mapping, not {data!r}")
            return None
        value = re.fullmatch(r"dict\(([^,]*), (.*)\)", kind).group(2)  # type: ignore[union-attr]
        return {k: _read(v, value, f"{path}.{k}", problems) for k, v in data.items()}
    if kind in _PRIMITIVES:
        wanted = _PRIMITIVES[kind]
        if not isinstance(data, wanted) or (kind == "int" and isinstance(data, bool)):
            problems.append(f"{path}: {kind} expected, got {data!r}")
        return data
    try:
        model = _model(kind)
    except LookupError as exc:
        problems.append(f"{path}: {exc}")
        return None
    if issubclass(model, pydantic.BaseModel):  # kubernetes' core types: strict already
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            for error in exc.errors():
                where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
                problems.append(f"{path}{where}: {error['msg']} ({model.__name__})")
            return None
    return _object(data, model, path, problems)


def _object(data: Any, model: Any, path: str, problems: list[str]) -> Any:
    """A KServe model from ``data``: every key one of its fields."""
    if not isinstance(data, dict):
        problems.append(f"{path}: a {model.__name__} is a mapping, not {data!r}")
        return None
    by_key = {key: attr for attr, key in model.attribute_map.items()}
    for key in data:
        if key not in by_key:
            problems.append(f"{path}.{key}: not a field of {model.__name__}")
    kwargs = {
        by_key[key]: _read(value, model.openapi_types[by_key[key]], f"{path}.{key}", problems)
        for key, value in data.items()
        if key in by_key
    }
    try:
        return model(**kwargs)
    except (TypeError, ValueError) as exc:  # the generated setters' own checks
        problems.append(f"{path}: {model.__name__} refuses it: {exc}")
        return None


def _lost(given: Any, written: Any, path: str, problems: list[str]) -> None:
    """Record each value of ``given`` the written-back model does not give unchanged."""
    if isinstance(given, dict) and isinstance(written, dict):
        for key, value in given.items():
            if key not in written:
                problems.append(f"{path}.{key}: dropped by the model")
            else:
                _lost(value, written[key], f"{path}.{key}", problems)
    elif isinstance(given, list) and isinstance(written, list) and len(given) == len(written):
        for i, (a, b) in enumerate(zip(given, written, strict=True)):
            _lost(a, b, f"{path}[{i}]", problems)
    elif given != written or type(given) is not type(written):
        problems.append(f"{path}: {given!r} comes back as {written!r}")


def check(document: dict[str, Any]) -> list[str]:
    """The problems of one document (apiVersion ``serving.kserve.io/VERSION``)."""
    group, _, version = str(document.get("apiVersion", "")).partition("/")
    kind = str(document.get("kind", ""))
    if group != constants.KSERVE_GROUP or not version:
        return [f"apiVersion: {document.get('apiVersion')!r} is not of {constants.KSERVE_GROUP}"]
    name = f"{version[:1].upper()}{version[1:]}{kind}"
    try:
        model = _model(name)
    except LookupError:
        return [f"kind: KServe has no {kind} in {version}"]
    if not hasattr(model, "openapi_types"):
        return [f"kind: {name} is not a generated model"]
    problems: list[str] = []
    instance = _object(document, model, kind, problems)
    if not problems:  # each field known and typed: is anything lost on the way back?
        _lost(document, ApiClient().sanitize_for_serialization(instance), kind, problems)
    return problems


def main() -> None:
    spec = json.loads(sys.argv[1])
    report = {
        "documents": [{"kind": d.get("kind"), "problems": check(d)} for d in spec["documents"]],
        "protocols": [p.value for p in constants.PredictorProtocol],
        "grpc_port": constants.DEFAULT_GRPC_PORT,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
