"""Schemathesis over the server's own OpenAPI document, with all its checks.

Every operation gets schema-valid (positive) and schema-invalid (negative) requests, and every
answer is checked as ``schemathesis run --checks all`` does: no 5xx, every status and content
type documented, answers that match their schemas, invalid requests refused with a 4xx, and
valid ones accepted. "Accepted" allows 400, 413 and 422 as well: JSON Schema cannot say that a
tensor's ``shape`` fits its ``data``, that a row has one value per column, or which columns a
given model needs (``GET /v2/models/{name}`` says that), and a body can be valid and too big.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from jsonschema import Draft202012Validator
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure, FailureGroup

from gates_off import NO_GATES
from shipyard import Client, Settings
from shipyard.packaging import PreparedArchive
from shipyard.predlog import PredictionLog
from shipyard.registry import Registry
from shipyard.serving import create_app
from shipyard.serving import serve_in_thread as uvicorn_server
from shipyard.settings import ServeSettings
from shipyard.store import Store


@pytest.fixture(scope="module")
def api_schema(
    tmp_path_factory: pytest.TempPathFactory, prepared: PreparedArchive
) -> Iterator[schemathesis.BaseSchema]:
    root: Path = tmp_path_factory.mktemp("schemathesis")
    store = Store(f"sqlite:///{root / 'db'}", str(root / "artifacts"), creator="admin").open()
    registry = Registry(store, NO_GATES)
    registry.register(prepared, name="churn", actor="alice")
    admin = Client(Settings(user="admin"), store=store).open()
    admin.users.set_role("bob", "approver", actor="admin")
    registry.approve("churn", 1, actor="bob", reason="ok")
    registry.promote("churn", 1, actor="alice")
    log = PredictionLog(root / "predlog").open()
    settings = ServeSettings(auth=False, max_body_bytes=64_000)
    app = create_app(store, settings=settings, prediction_log=log)
    with uvicorn_server(app) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json", config=_config())
    log.close()
    store.close()


def _config() -> SchemathesisConfig:
    accepted = ["2xx", "400", "401", "403", "404", "413", "422"]
    return SchemathesisConfig.from_dict(
        {"checks": {"positive_data_acceptance": {"expected-statuses": accepted}}}
    )


def test_all_checks(api_schema: schemathesis.BaseSchema) -> None:
    # schemathesis.pytest.from_fixture does not run on pytest 9 (it reads a private node
    # attribute), so each operation gets its own bounded hypothesis run here.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    turns = itertools.count()
    failures: list[str] = []
    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=25, deadline=2000, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: schemathesis.Case) -> None:
            # Point half of the generated model names at the served model, so generated
            # bodies reach the decoders and the schema check instead of stopping at a 404.
            params = case.path_parameters
            turn = next(turns)
            if params and "name" in params and turn % 2 == 0:
                params["name"] = "churn"
                if "version" in params and turn % 4 == 0:
                    params["version"] = "1"
            try:
                case.call_and_validate(timeout=10)
            except (Failure, FailureGroup) as exc:
                failures.append(f"{case.operation.label}: {exc}"[:1500])

        try:
            check()
        except Unsatisfiable:  # nothing to make invalid: no parameters, no body
            assert mode is GenerationMode.NEGATIVE, operation.label
    assert not failures, "\n\n".join(failures[:8])


def test_the_document_says_what_the_routes_do(store: Store) -> None:
    schema = create_app(store, settings=ServeSettings(auth=False)).openapi()
    paths = schema["paths"]
    for path in ("/metrics", "/ping", "/version"):
        kinds = {k.split(";")[0] for k in paths[path]["get"]["responses"]["200"]["content"]}
        assert kinds == {"text/plain"}, path
    infer = paths["/v2/models/{name}/infer"]["post"]
    assert set(infer["responses"]) == {
        "200",
        "400",
        "401",
        "403",
        "404",
        "413",
        "415",
        "422",
        "503",
    }
    assert set(infer["responses"]["200"]["content"]) == {
        "application/json",
        "application/octet-stream",
    }
    assert set(infer["requestBody"]["content"]) == {"application/json", "application/octet-stream"}
    assert not [p for p in infer.get("parameters", []) if p["in"] == "query"]  # no ?version=
    assert "HTTPValidationError" not in str(schema)  # this server answers 400, not FastAPI's 422
    body = paths["/invocations"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    validator = Draft202012Validator(body)
    assert not validator.is_valid({})  # the handler refuses it: so does the document
    assert not validator.is_valid({"instances": [[1]], "inputs": [[1]]})
    assert validator.is_valid({"dataframe_records": [{"age": 41}]})
