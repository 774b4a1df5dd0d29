"""Self-tests of the schemas and the contract validator (runpod_testkit.schemas)."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import referencing
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing.jsonschema import DRAFT202012

from runpod_testkit import schemas
from runpod_testkit.operations import ERROR_SCHEMA, OPERATIONS, POLICY_LIMITS, JobStatus
from runpod_testkit.schemas import (
    SCHEMA_BASE_URI,
    SCHEMA_DIR,
    ContractValidator,
    OutputSchemaError,
    load_output_schema,
    load_registry,
    misspelling_of,
    resolved_schema,
    schema_names,
    schema_path,
    schema_uri,
)

if TYPE_CHECKING:
    from importlib.abc import Traversable

DATA = Path(__file__).parent / "data"
EXAMPLES = sorted((DATA / "examples").glob("*.json"))
BAD_BODIES = json.loads((DATA / "bad_bodies.json").read_text(encoding="utf-8"))["cases"]
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


@pytest.fixture(scope="module")
def validator() -> ContractValidator:
    return ContractValidator()


def _load(path: Path | Traversable) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _example_schema(path: Path) -> str:
    """`status.completed.json` -> `status.response`, `purge-queue.json` -> `purge-queue.response`,
    `error.oversize-run.json` -> `error`, `webhook.completed.json` -> `webhook.envelope` (a body
    the endpoint sends, not answers)"""
    kind = path.name.split(".")[0]
    if kind == ERROR_SCHEMA:
        return ERROR_SCHEMA
    return "webhook.envelope" if kind == "webhook" else kind + ".response"


# --- the documented examples ----------------------------------------------------------------


def test_all_documented_examples_are_present() -> None:
    assert len(EXAMPLES) >= 15
    assert {_example_schema(p) for p in EXAMPLES} >= {
        name for name in schema_names() if name.endswith(".response")
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_documented_example_validates_clean(validator: ContractValidator, path: Path) -> None:
    body = _load(path)
    if path.name == "stream.chunks.json":
        # The docs print the bare chunk list; on the wire it sits in the envelope's `stream`.
        assert isinstance(body, list)
        assert body
        results = [validator.check("stream.chunk", chunk) for chunk in body]
        results.append(
            validator.check("stream.response", {"status": "IN_PROGRESS", "stream": body})
        )
    else:
        results = [validator.check(_example_schema(path), body)]
    for result in results:
        assert result.ok, str(result)
        assert result.drift == [], str(result)


# --- the schema files -----------------------------------------------------------------------


def test_schema_names_are_exactly_the_planned_set() -> None:
    assert schema_names() == sorted(
        [
            "cancel.response",
            "defs",
            "error",
            "health.response",
            "purge-queue.response",
            "request",
            "retry.response",
            "run.response",
            "runsync.response",
            "status.response",
            "stream.chunk",
            "stream.response",
            "webhook.envelope",
        ]
    )


@pytest.mark.parametrize("name", schema_names())
def test_schema_file_is_valid_2020_12_with_its_id(name: str) -> None:
    contents = _load(schema_path(name))
    Draft202012Validator.check_schema(contents)
    assert contents["$schema"] == DRAFT_2020_12
    assert contents["$id"] == schema_uri(name)


def test_schemas_are_read_from_the_package_data_only() -> None:
    # One place, inside the package: a checkout, an editable install and a wheel read the same
    # files (tests/test_wheel.py reads them from a built wheel).
    package_data = Path(schemas.__file__).resolve().parent / "_data" / "schemas"
    assert Path(str(SCHEMA_DIR)).resolve() == package_data
    assert not (package_data.parent.parent.parent / "schemas").exists()
    on_disk = sorted(path.name for path in package_data.glob("*.schema.json"))
    assert [name + ".schema.json" for name in schema_names()] == on_disk


def test_operations_table_and_schema_dir_agree() -> None:
    names = set(schema_names())
    referenced = {"defs", "stream.chunk", "webhook.envelope"}
    for op in OPERATIONS.values():
        referenced.update(op.responses.values())
        if op.request_schema is not None:
            referenced.add(op.request_schema)
    assert referenced - names == set(), "schemas named in operations.py without a file"
    assert names - referenced == set(), "schema files that nothing uses"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


@pytest.mark.parametrize("name", schema_names())
def test_every_ref_resolves_through_the_registry(name: str) -> None:
    registry = load_registry()
    resolver = registry.resolver(schema_uri(name))
    refs = list(_refs(registry.contents(schema_uri(name))))
    for ref in refs:
        assert resolver.lookup(ref).contents is not None
    assert "$ref" not in json.dumps(resolved_schema(name))


def test_recursive_refs_are_refused_not_looped() -> None:
    uri = SCHEMA_BASE_URI + "tree.schema.json"
    tree = {"$id": uri, "type": "object", "properties": {"child": {"$ref": "#"}}}
    registry = load_registry().with_resource(uri, DRAFT202012.create_resource(tree))
    with pytest.raises(schemas.SchemaFileError, match="recursive"):
        schemas._inline_refs(tree, registry.resolver(uri))


def test_cross_file_refs_exist() -> None:
    registry = load_registry()
    assert "defs.schema.json#/$defs/jobResult" in _refs(
        registry.contents(schema_uri("status.response"))
    )
    assert "stream.chunk.schema.json" in _refs(registry.contents(schema_uri("stream.response")))


def _every_sample_body() -> Iterator[tuple[str, Any]]:
    for path in EXAMPLES:
        if path.name != "stream.chunks.json":
            yield _example_schema(path), _load(path)
    for case in BAD_BODIES:
        yield case["schema"], case["body"]
    for schema, body, _ in DRIFT_CASES:
        yield schema, body
    yield from CLEAN_CASES


def test_inlined_refs_judge_like_the_registry(validator: ContractValidator) -> None:
    """The validator inlines $refs once for speed; it must find what resolving them would."""
    # The oracle resolves every $ref at check time. Its documents lose `$schema`, else jsonschema
    # would switch to the plain 2020-12 class inside a referenced document and drop the drift
    # keywords (the reason resolved_schema strips `$schema` from what it inlines).
    registry = referencing.Registry().with_resources(
        (
            schema_uri(name),
            DRAFT202012.create_resource(
                {k: v for k, v in _load(schema_path(name)).items() if k != "$schema"}
            ),
        )
        for name in schema_names()
    )
    by_reference = {
        name: schemas._ContractDraft202012(registry.contents(schema_uri(name)), registry=registry)
        for name in schema_names()
    }
    samples = list(_every_sample_body())
    assert len(samples) > 80
    for schema, body in samples:
        expected = sorted(
            (schemas._pointer(e.absolute_path), e.validator)
            for e in by_reference[schema].iter_errors(body)
        )
        result = validator.check(schema, body)
        found = sorted((f.pointer, f.keyword) for f in result.violations + result.drift)
        # check() drops drift on a value that is already a violation; so must the expectation.
        broken = {pointer for pointer, keyword in expected if keyword not in schemas.DRIFT_KEYWORDS}
        expected = [
            (pointer, keyword)
            for pointer, keyword in expected
            if keyword not in schemas.DRIFT_KEYWORDS or pointer not in broken
        ]
        assert found == expected, (schema, body)


def _drift_under_branching(node: Any, branching: bool = False) -> Iterator[str]:
    if isinstance(node, dict):
        if branching and schemas.DRIFT_KEYWORDS & node.keys():
            yield json.dumps(node)[:80]
        for key, value in node.items():
            if key in ("knownProperties", "knownValues", "const", "enum", "required"):
                continue
            inner = branching or key in ("if", "anyOf", "oneOf", "not", "contains")
            yield from _drift_under_branching(value, inner)
    elif isinstance(node, list):
        for value in node:
            yield from _drift_under_branching(value, branching)


@pytest.mark.parametrize("name", schema_names())
def test_drift_keywords_never_decide_a_branch(name: str) -> None:
    assert list(_drift_under_branching(resolved_schema(name))) == []


def test_policy_ranges_match_operations_table() -> None:
    policy = _load(schema_path("request"))["properties"]["policy"]["properties"]
    for key, limit in POLICY_LIMITS.items():
        assert (policy[key]["minimum"], policy[key]["maximum"]) == (limit.minimum, limit.maximum)


def test_job_status_values_match_operations_table() -> None:
    defs = _load(schema_path("defs"))["$defs"]
    assert tuple(defs["jobStatus"]["knownValues"]) == JobStatus.ALL


# --- violations -----------------------------------------------------------------------------


def test_bad_body_table_covers_every_schema() -> None:
    assert len(BAD_BODIES) >= 25
    assert {case["schema"] for case in BAD_BODIES} == set(schema_names()) - {"defs"}


@pytest.mark.parametrize("case", BAD_BODIES, ids=[case["id"] for case in BAD_BODIES])
def test_bad_body_is_a_violation_at_the_pointer(
    validator: ContractValidator, case: dict[str, Any]
) -> None:
    result = validator.check(case["schema"], case["body"])
    assert not result.ok
    assert [v.pointer for v in result.violations] == [case["pointer"]], str(result)
    (violation,) = result.violations
    assert case["expect"] in violation.message
    assert violation.message.startswith((case["pointer"] or "(body)") + ": expected")
    assert violation.schema == case["schema"]
    assert not violation.drift


def test_required_message_names_the_member_and_the_rule(validator: ContractValidator) -> None:
    result = validator.check("status.response", {"id": "j", "status": "FAILED"})
    (violation,) = result.violations
    assert violation.keyword == "required"
    assert violation.message == (
        "/error: expected the required property 'error' (a FAILED job carries an error string)"
    )


def test_violation_and_drift_on_the_same_value_is_only_a_violation(
    validator: ContractValidator,
) -> None:
    result = validator.check("status.response", {"id": "j", "status": 5})
    assert [v.pointer for v in result.violations] == ["/status"]
    assert result.drift == []


def test_several_violations_are_all_reported(validator: ContractValidator) -> None:
    body = {"id": "", "status": "COMPLETED", "delayTime": -1}
    result = validator.check("runsync.response", body)
    assert sorted(v.pointer for v in result.violations) == ["/delayTime", "/executionTime", "/id"]


# --- drift ----------------------------------------------------------------------------------

_HEALTH_JOBS = {"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0}

DRIFT_CASES = [
    ("status.response", {"id": "j", "status": "IN_QUEUE", "someNewField": 1}, "/someNewField"),
    ("status.response", {"id": "j", "status": "RUNNING"}, "/status"),
    ("runsync.response", {"id": "j", "status": "RUNNING", "delayTime": 3}, "/status"),
    ("run.response", {"id": "j", "status": "QUEUED"}, "/status"),
    ("cancel.response", {"id": "j", "status": "CANCELLED", "started": True}, "/started"),
    ("stream.response", {"status": "IN_PROGRESS", "stream": [], "cursor": 3}, "/cursor"),
    ("stream.response", {"status": "RUNNING", "stream": []}, "/status"),
    (
        "stream.response",
        {"status": "IN_PROGRESS", "stream": [{"output": 1, "index": 0}]},
        "/stream/0/index",
    ),
    ("purge-queue.response", {"removed": 0, "status": "COMPLETED"}, "/status"),
    ("purge-queue.response", {"removed": 0, "status": "completed", "jobs": []}, "/jobs"),
    (
        "health.response",
        {"jobs": {**_HEALTH_JOBS, "cancelled": 1}, "workers": {"idle": 0, "running": 0}},
        "/jobs/cancelled",
    ),
    (
        "health.response",
        {"jobs": _HEALTH_JOBS, "workers": {"idle": 0, "running": 0}, "endpoint": "x"},
        "/endpoint",
    ),
    ("request", {"input": {}, "priority": 1}, "/priority"),
    ("request", {"input": {}, "policy": {"ttl": 10_000, "retries": 2}}, "/policy/retries"),
    ("request", {"input": {}, "s3Config": {"region": "eu"}}, "/s3Config/region"),
]


@pytest.mark.parametrize(("schema", "body", "pointer"), DRIFT_CASES)
def test_undocumented_field_or_value_is_drift_not_violation(
    validator: ContractValidator, schema: str, body: Any, pointer: str
) -> None:
    result = validator.check(schema, body)
    assert result.ok, str(result)
    assert [d.pointer for d in result.drift] == [pointer]
    (drift,) = result.drift
    assert drift.drift
    assert drift.keyword in {"knownProperties", "knownValues"}
    assert drift.message.startswith(f"{pointer}: undocumented")
    assert "documented:" in drift.message


CLEAN_CASES = [
    # Worker states vary between sources; any further worker key is allowed.
    (
        "health.response",
        {"jobs": _HEALTH_JOBS, "workers": {"idle": 1, "running": 0, "unhealthy": 2, "sleeping": 0}},
    ),
    # Error bodies are undocumented: any object, other keys allowed.
    ("error", {}),
    ("error", {"error": "endpoint not found"}),
    ("error", {"message": "bad", "detail": [{"loc": ["body"]}], "code": 400}),
    # Other id forms, optional fields, any output.
    (
        "status.response",
        {"id": "test-538767fe", "status": "COMPLETED", "delayTime": 0, "executionTime": 0},
    ),
    (
        "status.response",
        {
            "id": "x",
            "status": "COMPLETED",
            "delayTime": 1,
            "executionTime": 2,
            "output": None,
            "workerId": "w1",
            "retries": 0,
        },
    ),
    ("status.response", {"id": "x", "status": "TIMED_OUT"}),
    ("cancel.response", {"id": "x", "status": "CANCELLED", "delayTime": 3, "executionTime": 4}),
    ("stream.response", {"id": "x", "status": "FAILED", "stream": [], "error": "boom"}),
    (
        "request",
        {
            "input": {"sleep_ms": 0},
            "webhook": "https://example.test/h",
            "webhookV2": {"url": "u"},
            "policy": {"executionTimeout": 5000, "lowPriority": True, "ttl": 604_800_000},
            "s3Config": {
                "accessId": "a",
                "accessSecret": "s",
                "bucketName": "b",
                "endpointUrl": "e",
                "objectPath": "p",
            },
        },
    ),
]


@pytest.mark.parametrize(("schema", "body"), CLEAN_CASES)
def test_lenient_where_production_is_undocumented(
    validator: ContractValidator, schema: str, body: Any
) -> None:
    result = validator.check(schema, body)
    assert result.ok, str(result)
    assert result.drift == [], str(result)


# --- output schemas -------------------------------------------------------------------------

ECHO_SCHEMA = {
    "$schema": DRAFT_2020_12,
    "type": "object",
    "required": ["echo"],
    "properties": {"items": {"type": "array", "items": {"type": "integer"}}},
}


def _completed(output: Any) -> dict[str, Any]:
    return {"id": "j", "status": "COMPLETED", "delayTime": 1, "executionTime": 2, "output": output}


def test_output_schema_accepts_matching_output() -> None:
    checker = ContractValidator(output_schema=ECHO_SCHEMA)
    assert checker.check("status.response", _completed({"echo": 1, "items": [1, 2]})).ok
    assert checker.check("runsync.response", _completed({"echo": None})).ok


@pytest.mark.parametrize(
    ("output", "pointer", "expect"),
    [
        ("text", "/output", "expected an object, got a string"),
        ({"items": []}, "/output/echo", "required property 'echo'"),
        ({"echo": 1, "items": [1, "x"]}, "/output/items/1", "expected an integer, got a string"),
    ],
)
@pytest.mark.parametrize("schema", ["status.response", "runsync.response"])
def test_output_schema_violations_point_into_output(
    schema: str, output: Any, pointer: str, expect: str
) -> None:
    result = ContractValidator(output_schema=ECHO_SCHEMA).check(schema, _completed(output))
    assert [v.pointer for v in result.violations] == [pointer]
    assert expect in result.violations[0].message
    assert result.violations[0].schema == schema


def test_output_schema_checks_absent_output_as_null() -> None:
    body = _completed(None)
    del body["output"]
    result = ContractValidator(output_schema=ECHO_SCHEMA).check("status.response", body)
    assert [v.message for v in result.violations] == ["/output: expected an object, got null"]


def test_output_schema_applies_only_to_completed_job_results() -> None:
    checker = ContractValidator(output_schema=ECHO_SCHEMA)
    failed = {"id": "j", "status": "FAILED", "error": "e", "output": "partial"}
    assert checker.check("status.response", failed).ok
    assert checker.check("run.response", {"id": "j", "status": "COMPLETED", "output": 3}).ok
    assert checker.check("stream.response", {"status": "COMPLETED", "stream": [{"output": 3}]}).ok


def test_without_output_schema_any_output_passes(validator: ContractValidator) -> None:
    assert validator.check("status.response", _completed("text")).ok


def test_output_schema_may_mark_drift_and_use_the_registry() -> None:
    output_schema = {
        "type": "object",
        "properties": {"n": {"$ref": schema_uri("defs") + "#/$defs/count"}},
        "knownProperties": ["n"],
    }
    checker = ContractValidator(output_schema=output_schema)
    result = checker.check("status.response", _completed({"n": 1, "extra": 2}))
    assert result.ok
    assert [d.pointer for d in result.drift] == ["/output/extra"]
    bad = checker.check("status.response", _completed({"n": -1}))
    assert [v.pointer for v in bad.violations] == ["/output/n"]


def test_output_schema_of_an_older_draft_uses_its_own_rules() -> None:
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]}
    checker = ContractValidator(output_schema=draft7)
    assert checker.check("status.response", _completed(["a", 1])).ok
    assert not checker.check("status.response", _completed([1])).ok


def test_output_schema_with_an_unresolvable_ref_says_so() -> None:
    checker = ContractValidator(output_schema={"$ref": "https://elsewhere.invalid/x.json"})
    with pytest.raises(OutputSchemaError, match="cannot resolve"):
        checker.check("status.response", _completed(1))


def test_invalid_output_schema_object_is_rejected() -> None:
    with pytest.raises(OutputSchemaError, match=r"not a valid JSON Schema: at /type"):
        ContractValidator(output_schema={"type": "strin"})


def test_load_output_schema_reads_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_text(json.dumps(ECHO_SCHEMA), encoding="utf-8")
    loaded = load_output_schema(path)
    assert loaded == ECHO_SCHEMA
    assert not ContractValidator(output_schema=loaded).check("status.response", _completed(1)).ok


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (None, "no such file"),
        (
            "{not json",
            "is not valid JSON: Expecting property name enclosed in double quotes "
            "at line 1 column 2",
        ),
        ("[1, 2]", "expected a JSON object, got an array"),
        ('{"type": "strin"}', "is not a valid JSON Schema: at /type:"),
        ('{"properties": {"a": {"minimum": "zero"}}}', "at /properties/a/minimum:"),
        ('{"$schema": "https://example.test/my-dialect"}', "unknown $schema"),
        (b"\xff\xfe{", "cannot read it"),
    ],
)
def test_load_output_schema_errors_name_the_file_and_the_problem(
    tmp_path: Path, content: str | bytes | None, expect: str
) -> None:
    path = tmp_path / "out.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(OutputSchemaError) as raised:
        load_output_schema(path)
    assert str(path) in str(raised.value)
    assert expect in str(raised.value)


def test_load_output_schema_rejects_a_directory(tmp_path: Path) -> None:
    with pytest.raises(OutputSchemaError, match="is a directory"):
        load_output_schema(tmp_path)


# --- responses by operation and HTTP status -------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "status_code", "body"),
    [
        ("run", 200, {"id": "j", "status": "IN_QUEUE"}),
        ("status-sync", 200, _completed(1)),
        ("status", 404, {"error": "job not found"}),
        ("run", 413, {}),
        # Production's answer to an oversize /run (captured 2026-09), which the emulator gives.
        (
            "run",
            400,
            {
                "status": 400,
                "title": "Bad Request",
                "detail": "bad request: body: exceeded max body size of 10MiB",
            },
        ),
        # A cancel of a running job carries its timings; a COMPLETED job whose result upload
        # failed has no output (both captured 2026-09).
        ("cancel", 200, {"delayTime": 5, "executionTime": 70, "id": "j-e2", "status": "CANCELLED"}),
        ("status", 200, {"delayTime": 5, "executionTime": 70, "id": "j-u2", "status": "COMPLETED"}),
        ("health", 401, {"detail": "unauthorized"}),
    ],
)
def test_check_response_picks_the_schema_for_the_status(
    validator: ContractValidator, operation: str, status_code: int, body: Any
) -> None:
    result = validator.check_response(operation, status_code, body)
    assert result.ok, str(result)
    assert result.schema == OPERATIONS[operation].responses[status_code]


def test_check_response_validates_the_body(validator: ContractValidator) -> None:
    result = validator.check_response("stream", 200, {"status": "COMPLETED"})
    assert [v.pointer for v in result.violations] == ["/stream"]
    assert result.schema == "stream.response"


@pytest.mark.parametrize(
    ("operation", "status_code"), [("run", 500), ("status", 201), ("health", 418)]
)
def test_check_response_with_unexpected_status_is_a_violation(
    validator: ContractValidator, operation: str, status_code: int
) -> None:
    result = validator.check_response(operation, status_code, {"id": "j", "status": "IN_QUEUE"})
    assert not result.ok
    (violation,) = result.violations
    assert violation.keyword == "httpStatus"
    assert f"unexpected HTTP status {status_code} from {operation}" in violation.message
    assert "200" in violation.message


def test_unknown_names_are_rejected_with_the_known_ones(validator: ContractValidator) -> None:
    with pytest.raises(KeyError, match=r"unknown schema 'status'; known: .*status.response"):
        validator.check("status", {})
    with pytest.raises(KeyError, match="unknown operation 'stat'"):
        validator.check_response("stat", 200, {})


def test_check_result_text_lists_findings(validator: ContractValidator) -> None:
    result = validator.check("status.response", {"id": "", "status": "RUNNING"})
    assert str(result).splitlines() == [
        "status.response: 1 violation(s), 1 drift",
        '  violation /id: expected a string of at least 1 character(s), got ""',
        '  drift /status: undocumented value "RUNNING" (documented: IN_QUEUE, IN_PROGRESS, '
        "COMPLETED, FAILED, CANCELLED, TIMED_OUT)",
    ]
    assert str(validator.check("status.response", {"id": "j", "status": "IN_QUEUE"})) == (
        "status.response: ok"
    )


# --- the fast path (fastjsonschema) never changes a verdict ---------------------------------

# Values a mutation may put anywhere: the edges of the rules the schemas use.
_MUTANTS: list[Any] = [
    None, True, False, 0, 1, -1, 2.0, 2.5, -0.5, 10**20, "", "x", "IN_QUEUE", "COMPLETED",
    "FAILED", "RUNNING", "completed", [], [1], [{"output": 1}], {}, {"output": 1}, {"echo": 1},
    {"items": [1, "x"]}, {"n": 1, "extra": 2}, {"n": -1},
]  # fmt: skip
_NEW_KEYS = ["id", "status", "output", "error", "stream", "input", "extra", "workers", "jobs"]


def _mutated(body: Any, rng: random.Random) -> Any:
    """`body` with one random change somewhere inside it (a copy)."""
    body = copy.deepcopy(body)
    containers = [body] if isinstance(body, (dict, list)) else []
    for node in containers:  # grows while walking: every nested container
        values = node.values() if isinstance(node, dict) else node
        containers += [v for v in values if isinstance(v, (dict, list))]
    if not containers:
        return rng.choice(_MUTANTS)
    node = rng.choice(containers)
    action = rng.randrange(3)
    if isinstance(node, dict):
        keys = list(node)
        if action == 0 and keys:
            del node[rng.choice(keys)]
        elif action == 1 and keys:
            node[rng.choice(keys)] = copy.deepcopy(rng.choice(_MUTANTS))
        else:
            node[rng.choice(_NEW_KEYS)] = copy.deepcopy(rng.choice(_MUTANTS))
    elif action == 0 and node:
        node.pop(rng.randrange(len(node)))
    elif node:
        node[rng.randrange(len(node))] = copy.deepcopy(rng.choice(_MUTANTS))
    else:
        node.append(copy.deepcopy(rng.choice(_MUTANTS)))
    return body


def _random_bodies(count: int, seed: int) -> list[tuple[str, Any]]:
    rng = random.Random(seed)
    samples = list(_every_sample_body())
    samples += [("stream.chunk", chunk) for chunk in _load(DATA / "examples/stream.chunks.json")]
    samples += [(name, _completed(output)) for name in OUTPUT_CHECKED for output in _MUTANTS]
    bodies = []
    for _ in range(count):
        schema, body = rng.choice(samples)
        for _ in range(rng.randint(1, 3)):
            body = _mutated(body, rng)
        if rng.random() < 0.1:  # now and then a body meets the wrong schema
            schema = rng.choice(schema_names())
        bodies.append((schema, body))
    return samples + bodies


OUTPUT_CHECKED = sorted(schemas.OUTPUT_CHECKED_SCHEMAS)
_FAST_OUTPUT_SCHEMAS = {
    "none": None,
    "echo": ECHO_SCHEMA,
    "array": {"type": "array", "items": {"type": "integer", "minimum": 0}},
    "drift and registry": {
        "type": "object",
        "properties": {"n": {"$ref": schema_uri("defs") + "#/$defs/count"}},
        "knownProperties": ["n"],
    },
    "enum and branches": {
        "anyOf": [{"enum": [1, "x", None]}, {"type": "object", "required": ["echo"]}],
        "not": {"const": 2.5},
    },
}


def _full_only(output_schema: Any) -> ContractValidator:
    checker = ContractValidator(output_schema)
    checker._fast.clear()  # the reference: today's jsonschema pass on every body
    return checker


def test_fast_path_covers_every_shipped_schema() -> None:
    checker = ContractValidator()
    assert sorted(checker._fast) == schema_names()
    for label, output_schema in _FAST_OUTPUT_SCHEMAS.items():
        assert ContractValidator(output_schema)._fast, label


@pytest.mark.parametrize(
    "output_schema",
    [
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "array"},  # older draft
        {"type": "string", "format": "date-time"},  # fastjsonschema would assert the format
        {"type": "array", "prefixItems": [{"type": "string"}]},  # 2020-12 only
        {"$ref": "https://elsewhere.invalid/x.json"},  # unresolvable: the full pass says so
        {"enum": [True, 1]},  # 1 == True in Python
    ],
)
def test_fast_path_is_off_when_the_output_schema_cannot_be_translated(
    output_schema: dict[str, Any],
) -> None:
    assert ContractValidator(output_schema)._fast == {}


@pytest.mark.parametrize("label", list(_FAST_OUTPUT_SCHEMAS))
def test_fast_path_gives_the_full_verdict_on_every_body(label: str) -> None:
    output_schema = _FAST_OUTPUT_SCHEMAS[label]
    fast, full = ContractValidator(output_schema), _full_only(output_schema)
    bodies = _random_bodies(400, seed=sum(map(ord, label)))
    clean = 0
    for schema, body in bodies:
        expected = full.check(schema, body)
        strict_pass = fast.passes(schema, body)
        assert strict_pass == (not expected.violations and not expected.drift), (schema, body)
        assert fast.check(schema, body) == expected, (schema, body)
        clean += strict_pass
    # Both verdicts are well represented, so the comparison means something.
    assert 25 < clean < len(bodies) - 25, clean


# --- a documented state spelled another way is a violation; a new word is drift ------------


@pytest.mark.parametrize(
    ("spelled", "documented"),
    [
        ("in_queue", "IN_QUEUE"),
        ("Completed", "COMPLETED"),
        ("IN-PROGRESS", "IN_PROGRESS"),
        ("in progress", "IN_PROGRESS"),
        ("CANCELED", "CANCELLED"),
        ("TIMEDOUT", "TIMED_OUT"),
    ],
)
@pytest.mark.parametrize("schema", ["run.response", "status.response", "stream.response"])
def test_a_documented_state_spelled_another_way_is_a_violation(
    validator: ContractValidator, schema: str, spelled: str, documented: str
) -> None:
    body: dict[str, Any] = {"id": "job-1", "status": spelled}
    if schema == "stream.response":
        body["stream"] = []
    result = validator.check(schema, body)
    assert not result.drift, str(result)
    (violation,) = result.violations
    assert violation.keyword == "misspellingIsViolation"
    assert violation.pointer == "/status"
    assert f'"{spelled}" is the documented "{documented}" spelled another way' in violation.message


@pytest.mark.parametrize("word", ["RUNNING", "PAUSED", "FAILURE", "QUEUED"])
def test_a_new_state_word_stays_drift(validator: ContractValidator, word: str) -> None:
    result = validator.check("status.response", {"id": "job-1", "status": word})
    assert result.ok, str(result)
    assert [finding.keyword for finding in result.drift] == ["knownValues"]


def test_misspelling_is_only_judged_where_the_schema_asks() -> None:
    """purge-queue's documented `completed` is no job state: another spelling stays drift."""
    result = ContractValidator().check(
        "purge-queue.response", {"removed": 0, "status": "Completed"}
    )
    assert result.ok, str(result)
    assert [finding.keyword for finding in result.drift] == ["knownValues"]
    assert misspelling_of("in_queue", JobStatus.ALL) == "IN_QUEUE"
    assert misspelling_of("RUNNING", JobStatus.ALL) is None
