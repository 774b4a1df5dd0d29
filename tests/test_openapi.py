"""`runpod-testkit openapi`: the OpenAPI 3.1 document is valid (openapi-spec-validator), says what
the operations table and the schemas say, and the emulator keeps it (Schemathesis over HTTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import referencing
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.stateful import run_state_machine_as_test
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from referencing.jsonschema import DRAFT202012
from schemathesis import checks

from runpod_testkit.cli import main
from runpod_testkit.emulator.server import RunningEmulator
from runpod_testkit.openapi import ERROR_DESCRIPTIONS, openapi_document, openapi_json
from runpod_testkit.operations import OPERATIONS
from runpod_testkit.schemas import load_registry, schema_uri
from tests.conftest import TEST_API_KEY

DATA = Path(__file__).parent / "data"
DOCUMENT_URI = "https://runpod-testkit.invalid/openapi.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document, cls=OpenAPIV31SpecValidator)
    assert document["openapi"] == "3.1.0"


def test_the_validator_refuses_a_broken_document(document: dict[str, Any]) -> None:
    # The validator is not vacuous: a response without its required description is refused.
    broken = json.loads(json.dumps(document))
    del broken["paths"]["/run"]["post"]["responses"]["200"]["description"]
    with pytest.raises(Exception, match="description"):
        validate(broken, cls=OpenAPIV31SpecValidator)


def test_every_operation_and_method_of_the_table_is_a_path(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert set(paths) == {op.path for op in OPERATIONS.values()}
    operation_ids = []
    for op in OPERATIONS.values():
        item = paths[op.path]
        assert set(item) == {method.lower() for method in op.methods}
        for method in op.methods:
            described = item[method.lower()]
            operation_ids.append(described["operationId"])
            assert described["summary"] == op.summary
            responses = described["responses"]
            assert set(responses) == {str(status) for status in op.responses}
            for status, schema_name in op.responses.items():
                content = responses[str(status)]["content"]["application/json"]
                assert content["schema"] == {"$ref": f"#/components/schemas/{schema_name}"}
            query = {p["name"]: p for p in described.get("parameters", []) if p["in"] == "query"}
            assert set(query) == {param.name for param in op.query}
            for param in op.query:
                schema = query[param.name]["schema"]
                assert (schema["minimum"], schema["maximum"]) == (param.minimum, param.maximum)
                assert schema.get("default") == param.default
            path_params = [p["name"] for p in described.get("parameters", []) if p["in"] == "path"]
            assert path_params == (["job_id"] if op.takes_job_id else [])
            if op.request_schema is None:
                assert "requestBody" not in described
            else:
                body = described["requestBody"]["content"]["application/json"]["schema"]
                assert body == {"$ref": f"#/components/schemas/{op.request_schema}"}
                assert described["x-maxBodyBytes"] == op.max_body_bytes
            if op.rate_limit is None:
                assert "x-rateLimit" not in described
            else:
                limit = described["x-rateLimit"]
                assert (limit["requests"], limit["windowSeconds"], limit["concurrent"]) == (
                    op.rate_limit.requests,
                    op.rate_limit.window_s,
                    op.rate_limit.concurrent,
                )
                assert f"{op.rate_limit.requests} requests per" in described["description"]
    assert len(operation_ids) == len(set(operation_ids))
    assert set(ERROR_DESCRIPTIONS) == {
        status for op in OPERATIONS.values() for status in op.error_statuses
    }


def test_auth_is_a_bearer_scheme_required_everywhere(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes == {"bearerAuth": {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}}
    assert document["security"] == [{"bearerAuth": []}]


def test_run_and_runsync_link_their_job_id_to_the_job_operations(document: dict[str, Any]) -> None:
    by_id = {
        described["operationId"]: (path, method)
        for path, item in document["paths"].items()
        for method, described in item.items()
    }
    for path in ("/run", "/runsync"):
        post = document["paths"][path]["post"]
        links = post["responses"]["200"]["links"]
        assert {by_id[link["operationId"]][0] for link in links.values()} == {
            op.path for op in OPERATIONS.values() if op.takes_job_id
        }
        for link in links.values():
            assert link["parameters"] == {"job_id": "$response.body#/id"}
        webhook = post["callbacks"]["jobEnded"]["{$request.body#/webhook}"]["post"]
        envelope = webhook["requestBody"]["content"]["application/json"]["schema"]
        assert envelope == {"$ref": "#/components/schemas/webhook.envelope"}


def _bodies() -> Iterator[tuple[str, Any]]:
    """(schema name, body) of every documented example and every contract-breaking body."""
    for path in sorted((DATA / "examples").glob("*.json")):
        kind = path.name.split(".")[0]
        name = {"error": "error", "webhook": "webhook.envelope"}.get(kind, kind + ".response")
        yield name, json.loads(path.read_text(encoding="utf-8"))
    bad = json.loads((DATA / "bad_bodies.json").read_text(encoding="utf-8"))["cases"]
    for case in bad:
        yield case["schema"], case["body"]


def test_the_components_accept_and_refuse_what_the_schema_files_do(
    document: dict[str, Any],
) -> None:
    """Under plain JSON Schema 2020-12 (what API tools run), each component judges every example
    and every broken body as its schema file does: no rule lost or added on the way."""
    in_document = referencing.Registry().with_resource(
        DOCUMENT_URI, DRAFT202012.create_resource(document)
    )
    files = load_registry()
    refused = 0
    for name, body in _bodies():
        component = Draft202012Validator(
            {"$ref": f"{DOCUMENT_URI}#/components/schemas/{name}"}, registry=in_document
        )
        original = Draft202012Validator({"$ref": schema_uri(name)}, registry=files)
        assert component.is_valid(body) == original.is_valid(body), (name, body)
        refused += not component.is_valid(body)
    assert refused >= 20  # the broken bodies are broken under standard keywords too


def test_the_drift_keywords_become_extensions(document: dict[str, Any]) -> None:
    status = document["components"]["schemas"]["jobStatus"]
    assert status["x-knownValues"][:2] == ["IN_QUEUE", "IN_PROGRESS"]
    assert status["x-misspellingIsViolation"] is True
    assert "knownValues" not in json.dumps(document).replace("x-knownValues", "")
    assert '"$id"' not in json.dumps(document)  # every $ref resolves inside the document


def test_the_command_writes_the_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "openapi.json"
    assert main(["openapi", "--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == openapi_json()
    assert main(["openapi"]) == 0
    assert capsys.readouterr().out == openapi_json()
    url = "http://127.0.0.1:8000/v2/my-endpoint"
    assert main(["openapi", "--server", url, "--output", str(target)]) == 0
    assert json.loads(target.read_text(encoding="utf-8"))["servers"] == [{"url": url}]


def test_the_command_names_a_file_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-folder" / "openapi.json"
    assert main(["openapi", "--output", str(missing)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "--output" in error
    assert str(missing) in error


def test_the_command_refuses_a_server_that_is_no_url(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["openapi", "--server", "127.0.0.1:8000/v2/ep"])
    assert exited.value.code == 2
    assert "--server: expected an http(s) endpoint URL" in capsys.readouterr().err


# --- Schemathesis against the emulator over HTTP -----------------------------------------------

CONFORMANCE = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
"""No 5xx, and every answer's status, content type, headers and body as the document says."""
FUZZ = settings(
    max_examples=5,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)


def _loopback_only(case: schemathesis.Case) -> None:
    # A generated `webhook` would make the emulator POST to whatever URL it names: the tests
    # talk to loopback only, and webhooks have their own tests.
    if isinstance(case.body, dict):
        case.body.pop("webhook", None)


@pytest.fixture
def api_schema(emulator: RunningEmulator, endpoint_id: str) -> schemathesis.BaseSchema:
    url = emulator.endpoint_url(endpoint_id)
    schema = schemathesis.openapi.from_dict(openapi_document([url]))
    schema.config.update(
        base_url=url, headers={"Authorization": f"Bearer {TEST_API_KEY}"}, request_timeout=30
    )
    return schema


@pytest.mark.slow
@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, "negative"])
def test_schemathesis_finds_no_server_error_and_nothing_outside_the_schemas(
    api_schema: schemathesis.BaseSchema, mode: schemathesis.GenerationMode | str
) -> None:
    """Every operation with generated valid requests and, negative, invalid ones (bodies, query
    values and job ids out of the document): the emulator answers each as documented."""
    generation = schemathesis.GenerationMode(mode)
    calls = expected = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if generation is schemathesis.GenerationMode.NEGATIVE and not (
            operation.query or operation.body
        ):
            # With the key fixed, nothing can be made invalid: no input (/health), or only the
            # job id, which any path segment is (/cancel, /retry).
            continue
        expected += 1

        @FUZZ
        @given(case=operation.as_strategy(generation_mode=generation))
        def call(case: schemathesis.Case) -> None:
            nonlocal calls
            _loopback_only(case)
            case.call_and_validate(checks=CONFORMANCE)
            calls += 1

        call()
    assert calls >= expected >= 8  # each operation was called (negative: those with input)


@pytest.mark.slow
def test_schemathesis_follows_the_links_through_real_jobs(
    api_schema: schemathesis.BaseSchema,
) -> None:
    """Stateful: /run and /runsync, then the operations their links lead to with the job id they
    answered, so /status, /stream, /cancel and /retry meet jobs that exist."""
    answered: list[tuple[str, int]] = []

    class Jobs(api_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            _loopback_only(case)
            return {}

        def validate_response(
            self, response: schemathesis.Response, case: schemathesis.Case, **kwargs: Any
        ) -> None:
            answered.append((case.operation.label, response.status_code))
            case.validate_response(response, checks=CONFORMANCE)

    run_state_machine_as_test(
        Jobs,
        settings=settings(FUZZ, max_examples=8, stateful_step_count=6),
    )
    reached = {label for label, status in answered if status == 200 and "{job_id}" in label}
    assert len(reached) >= 3, answered  # job operations answered 200: the links were followed
