"""Reading an MLflow tracking server: runs, registered model versions, aliases, artifacts.

Two readers with one interface (``MlflowTracking``):

- ``RestTracking`` for ``http(s)://`` tracking URIs speaks MLflow's REST API with httpx (a
  Shipyard dependency): no MLflow install is needed to import from a server, and the importer
  reads only documented endpoints (``/api/2.0/mlflow/...``, ``/api/2.0/mlflow-artifacts/...``).
- ``LibraryTracking`` for any other URI (``sqlite:///mlflow.db``, a ``file:`` store, a
  database URL) uses the ``mlflow`` package's own client: those stores' layouts are MLflow's
  private business, so reading them without MLflow would break with its next release.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlparse

from shipyard.errors import InvalidInput, MissingDependency, NotFound, StoreUnavailable


@dataclass(frozen=True)
class MlflowRun:
    """An MLflow run: params, every metric's ``(step, value)`` series, tags and times (ms)."""

    run_id: str
    name: str
    status: str
    user: str
    start_ms: int | None
    end_ms: int | None
    params: dict[str, str]
    metrics: dict[str, list[tuple[int, float]]]
    tags: dict[str, str]
    artifact_uri: str
    model_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class MlflowVersion:
    """A registered model version: where its model is (``source``), its run and aliases."""

    name: str
    version: int
    source: str
    run_id: str | None
    aliases: tuple[str, ...] = ()
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


class MlflowTracking(Protocol):
    """What the importer reads from a tracking server."""

    uri: str

    def run(self, run_id: str) -> MlflowRun: ...

    def version(self, name: str, version: int) -> MlflowVersion: ...

    def alias(self, name: str, alias: str) -> MlflowVersion: ...

    def versions(self, name: str) -> list[MlflowVersion]: ...

    def download(self, source: str, dest: Path) -> Path: ...


def connect(uri: str) -> MlflowTracking:
    """The reader for tracking URI ``uri`` (REST for http(s), MLflow's client otherwise)."""
    if urlparse(uri).scheme in ("http", "https"):
        return RestTracking(uri)
    return LibraryTracking(uri)


class RestTracking:
    """MLflow's REST API over httpx."""

    def __init__(self, uri: str, *, timeout: float = 30.0) -> None:
        self.uri = uri.rstrip("/")
        self.timeout = timeout

    def _get(self, endpoint: str, what: str, **params: Any) -> dict[str, Any]:
        import httpx

        try:
            response = httpx.get(f"{self.uri}{endpoint}", params=params, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(
                f"The MLflow tracking server at {self.uri} cannot be reached ({exc}): start it "
                "or pass the right --tracking-uri."
            ) from exc
        if response.status_code == 404 or (
            response.status_code == 400 and "not found" in response.text.lower()
        ):
            raise NotFound(f"The MLflow tracking server at {self.uri} has no {what}.")
        if response.status_code != 200:
            raise StoreUnavailable(
                f"The MLflow tracking server at {self.uri} answered {response.status_code} for "
                f"{what}: {_message(response)}."
            )
        try:
            body: dict[str, Any] = response.json()
        except ValueError as exc:
            raise StoreUnavailable(
                f"{self.uri} answered {what} with something that is not JSON: is it an MLflow "
                "tracking server?"
            ) from exc
        return body

    def run(self, run_id: str) -> MlflowRun:
        body = self._get("/api/2.0/mlflow/runs/get", f"run '{run_id}'", run_id=run_id)["run"]
        info, data = body.get("info", {}), body.get("data", {})
        metrics: dict[str, list[tuple[int, float]]] = {}
        for key in sorted({m["key"] for m in data.get("metrics", [])}):
            history = self._get(
                "/api/2.0/mlflow/metrics/get-history",
                f"metric '{key}' of run '{run_id}'",
                run_id=run_id,
                metric_key=key,
            ).get("metrics", [])
            metrics[key] = [(int(m.get("step", 0)), float(m["value"])) for m in history]
        outputs = body.get("outputs", {}).get("model_outputs", [])
        return MlflowRun(
            run_id=run_id,
            name=info.get("run_name", ""),
            status=info.get("status", "FINISHED"),
            user=info.get("user_id", ""),
            start_ms=info.get("start_time"),
            end_ms=info.get("end_time"),
            params={p["key"]: p.get("value", "") for p in data.get("params", [])},
            metrics=metrics,
            tags={t["key"]: t.get("value", "") for t in data.get("tags", [])},
            artifact_uri=info.get("artifact_uri", ""),
            model_ids=tuple(o["model_id"] for o in outputs if o.get("model_id")),
        )

    def version(self, name: str, version: int) -> MlflowVersion:
        body = self._get(
            "/api/2.0/mlflow/model-versions/get",
            f"version {version} of registered model '{name}'",
            name=name,
            version=str(version),
        )
        return _version(body["model_version"])

    def alias(self, name: str, alias: str) -> MlflowVersion:
        body = self._get(
            "/api/2.0/mlflow/registered-models/alias",
            f"alias '{alias}' of registered model '{name}'",
            name=name,
            alias=alias,
        )
        return _version(body["model_version"])

    def versions(self, name: str) -> list[MlflowVersion]:
        self._get("/api/2.0/mlflow/registered-models/get", f"registered model '{name}'", name=name)
        found: list[MlflowVersion] = []
        token = None
        while True:
            params: dict[str, Any] = {"filter": f"name='{name}'", "max_results": 1000}
            if token:
                params["page_token"] = token
            body = self._get("/api/2.0/mlflow/model-versions/search", "model versions", **params)
            # search leaves out aliases: each version is read on its own for them
            listed = body.get("model_versions", [])
            found.extend(self.version(name, int(v["version"])) for v in listed)
            token = body.get("next_page_token")
            if not token:
                return sorted(found, key=lambda v: v.version)

    def download(self, source: str, dest: Path) -> Path:
        uri = self._artifact_uri(source)
        parsed = urlparse(uri)
        if parsed.scheme == "mlflow-artifacts":
            self._fetch_tree(parsed.path.strip("/"), dest, source)
            return dest
        local = Path(parsed.path) if parsed.scheme == "file" else Path(uri)
        if parsed.scheme in ("", "file") and local.is_dir():  # a server on this machine
            shutil.copytree(local, dest, dirs_exist_ok=True)
            return dest
        raise InvalidInput(
            f"The artifacts of {source} are at {uri}, which Shipyard does not read over REST "
            "(it reads mlflow-artifacts:/ and local paths): download the model with 'mlflow "
            "artifacts download' and import the directory."
        )

    def _artifact_uri(self, source: str) -> str:
        parsed = urlparse(source)
        if parsed.scheme == "models" and parsed.netloc == "" and "/" not in parsed.path.strip("/"):
            model_id = parsed.path.strip("/")  # a logged model (MLflow 3): models:/m-...
            body = self._get(f"/api/2.0/mlflow/logged-models/{quote(model_id)}", source)
            return str(body["model"]["info"]["artifact_uri"])
        if parsed.scheme == "runs":
            run_id, _, path = parsed.path.strip("/").partition("/")
            run = self.run(run_id)
            for model_id in run.model_ids:  # MLflow 3 keeps models apart from run artifacts
                info = self._get(f"/api/2.0/mlflow/logged-models/{quote(model_id)}", source)
                if info["model"]["info"].get("name") == path:
                    return str(info["model"]["info"]["artifact_uri"])
            return f"{run.artifact_uri.rstrip('/')}/{path}"
        return source

    def _fetch_tree(self, path: str, dest: Path, source: str) -> None:
        import httpx

        listing = self._get(
            "/api/2.0/mlflow-artifacts/artifacts", f"artifacts of {source}", path=path
        )
        files = listing.get("files", [])
        if not files:
            raise NotFound(f"The MLflow tracking server at {self.uri} has no files for {source}.")
        dest.mkdir(parents=True, exist_ok=True)
        for item in files:
            name = item["path"].rsplit("/", 1)[-1]
            if item.get("is_dir"):
                self._fetch_tree(f"{path}/{name}", dest / name, source)
                continue
            url = f"{self.uri}/api/2.0/mlflow-artifacts/artifacts/{quote(path)}/{quote(name)}"
            try:
                with httpx.stream("GET", url, timeout=self.timeout) as response:
                    response.raise_for_status()
                    with (dest / name).open("wb") as fh:
                        for chunk in response.iter_bytes():
                            fh.write(chunk)
            except httpx.HTTPError as exc:
                raise StoreUnavailable(
                    f"Downloading {name} of {source} from {self.uri} failed: {exc}."
                ) from exc


def _message(response: Any) -> str:
    try:
        return str(response.json().get("message") or response.text[:200])
    except ValueError:
        return str(response.text[:200])


def _version(raw: dict[str, Any]) -> MlflowVersion:
    return MlflowVersion(
        name=raw["name"],
        version=int(raw["version"]),
        source=raw.get("source", ""),
        run_id=raw.get("run_id") or None,
        aliases=tuple(raw.get("aliases", [])),
        description=raw.get("description") or "",
        tags={t["key"]: t.get("value", "") for t in raw.get("tags", [])},
    )


class LibraryTracking:
    """A tracking store read through the ``mlflow`` package (file stores, databases)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def _client(self) -> Any:
        try:
            from mlflow import MlflowClient
        except ImportError as exc:
            raise MissingDependency(
                f"Reading the MLflow store {self.uri} needs the mlflow package (pip install "
                "mlflow); a tracking server (http://...) is read without it."
            ) from exc
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise NotFound(f"The MLflow store {self.uri} has no {what}.") from exc
            raise StoreUnavailable(f"Reading {what} from {self.uri} failed: {exc.message}") from exc

    def run(self, run_id: str) -> MlflowRun:
        client = self._client()
        run = self._call(f"run '{run_id}'", client.get_run, run_id)
        metrics = {
            key: [
                (int(m.step), float(m.value))
                for m in self._call(f"metric '{key}'", client.get_metric_history, run_id, key)
            ]
            for key in sorted(run.data.metrics)
        }
        outputs = getattr(run, "outputs", None)
        model_ids = tuple(o.model_id for o in getattr(outputs, "model_outputs", None) or [])
        return MlflowRun(
            run_id=run_id,
            name=run.info.run_name or "",
            status=run.info.status,
            user=run.info.user_id or "",
            start_ms=run.info.start_time,
            end_ms=run.info.end_time,
            params=dict(run.data.params),
            metrics=metrics,
            tags=dict(run.data.tags),
            artifact_uri=run.info.artifact_uri,
            model_ids=model_ids,
        )

    def version(self, name: str, version: int) -> MlflowVersion:
        client = self._client()
        what = f"version {version} of registered model '{name}'"
        return _lib_version(self._call(what, client.get_model_version, name, str(version)))

    def alias(self, name: str, alias: str) -> MlflowVersion:
        client = self._client()
        what = f"alias '{alias}' of registered model '{name}'"
        return _lib_version(self._call(what, client.get_model_version_by_alias, name, alias))

    def versions(self, name: str) -> list[MlflowVersion]:
        client = self._client()
        self._call(f"registered model '{name}'", client.get_registered_model, name)
        found = self._call("model versions", client.search_model_versions, f"name='{name}'")
        return sorted((self.version(name, int(v.version)) for v in found), key=lambda v: v.version)

    def download(self, source: str, dest: Path) -> Path:
        from mlflow.artifacts import download_artifacts

        uri = self._artifact_uri(source)
        dest.mkdir(parents=True, exist_ok=True)
        path = self._call(
            f"model {source}",
            lambda: download_artifacts(artifact_uri=uri, dst_path=str(dest), tracking_uri=self.uri),
        )
        return Path(path)

    def _artifact_uri(self, source: str) -> str:
        """Where the files of ``source`` are: a logged model's (MLflow 3) location, looked up
        here rather than left to MLflow's global registry URI."""
        client = self._client()
        parsed = urlparse(source)
        if parsed.scheme == "models" and "/" not in parsed.path.strip("/"):
            model_id = parsed.path.strip("/")
            return str(self._call(source, client.get_logged_model, model_id).artifact_location)
        if parsed.scheme == "runs":
            run_id, _, path = parsed.path.strip("/").partition("/")
            run = self.run(run_id)
            for model_id in run.model_ids:
                logged = self._call(source, client.get_logged_model, model_id)
                if logged.name == path:
                    return str(logged.artifact_location)
            return f"{run.artifact_uri.rstrip('/')}/{path}"
        return source


def _lib_version(mv: Any) -> MlflowVersion:
    return MlflowVersion(
        name=mv.name,
        version=int(mv.version),
        source=mv.source or "",
        run_id=mv.run_id or None,
        aliases=tuple(mv.aliases or ()),
        description=mv.description or "",
        tags=dict(mv.tags or {}),
    )
