"""An OpenAPI 3.1 document of the queue API, assembled from the schemas and the operations table.

Runpod publishes OpenAPI only for its management API; this describes the queue operations as the
suite checks them, for client generators and API tools (`runpod-testkit openapi`). Nothing in it
is spelled twice: paths, methods, query ranges, body limits, rate limits and response schema
names come from `operations.py`, the bodies' shapes from the JSON schemas.

The schemas become `components/schemas` (the `$defs` of `defs.schema.json` hoisted to components
of their own, every `$ref` pointing inside the document, so no tool fetches a file). The suite's
drift keywords are kept as extensions: `x-knownProperties` and `x-knownValues` list what is
documented, and anything else is undocumented (reported as drift by the suite), not invalid.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterable, Mapping
from typing import Any

from runpod_testkit.operations import ERROR_SCHEMA, OPERATIONS, Operation, QueryParam
from runpod_testkit.schemas import (
    _DATA_KEYWORDS,
    _SCHEMA_MAP_KEYWORDS,
    DRIFT_KEYWORDS,
    MISSPELLING,
    SCHEMA_SUFFIX,
    load_registry,
    schema_names,
    schema_uri,
)

__all__ = ["DEFAULT_SERVERS", "OPENAPI_VERSION", "openapi_document", "openapi_json"]

OPENAPI_VERSION = "3.1.0"
DEFAULT_SERVERS = (
    ("https://api.runpod.ai/v2/{endpoint_id}", "Production"),
    ("http://127.0.0.1:8000/v2/{endpoint_id}", "The emulator (runpod-testkit emulator)"),
)
"""Each server is an endpoint URL: the operations' paths are relative to `{base}/{endpoint_id}`."""

_COMPONENTS = "#/components/schemas/"
WEBHOOK_SCHEMA = "webhook.envelope"
_EXTENSIONS = {keyword: "x-" + keyword for keyword in (*sorted(DRIFT_KEYWORDS), MISSPELLING)}
_DROPPED = frozenset({"$schema", "$id", "$defs"})

ERROR_DESCRIPTIONS: Mapping[int, str] = {
    400: "Bad request: a body that is not JSON or breaks the request schema, a body over the "
    "operation's limit (production answers an oversize /run so), or a query value out of range.",
    401: "No API key, or a wrong one.",
    404: "No such job (never submitted, or its result has expired), or no such route.",
    405: "A method the operation does not accept; `Allow` lists those it does.",
    413: "A body over the operation's limit, where a gateway answers it so.",
    429: "Over the operation's rate limit; `Retry-After` says when to try again.",
}
"""What each documented error status means; its body is the `error` schema."""


# --- schemas -> components ------------------------------------------------------------------


def _component_ref(ref: str, current: str) -> str:
    """`defs.schema.json#/$defs/job` -> `#/components/schemas/job`;
    `stream.chunk.schema.json` -> `#/components/schemas/stream.chunk`."""
    file, _, fragment = ref.partition("#")
    name = file.removesuffix(SCHEMA_SUFFIX) if file else current
    if file and not file.endswith(SCHEMA_SUFFIX):
        raise ValueError(f"$ref {ref!r} in {current!r} names no schema file")
    if not fragment:
        return _COMPONENTS + name
    if fragment.startswith("/$defs/") and fragment.count("/") == 2:
        return _COMPONENTS + fragment.removeprefix("/$defs/")
    raise ValueError(f"$ref {ref!r} in {current!r}: only whole files and $defs are supported")


def _as_component(schema: Any, current: str) -> Any:
    """A schema with its `$ref`s pointing at components and the drift keywords as extensions."""
    if not isinstance(schema, dict):
        return schema  # a boolean schema
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROPPED:
            continue
        name = _EXTENSIONS.get(key) or key
        if key == "$ref":
            converted[key] = _component_ref(value, current)
        elif key in _DATA_KEYWORDS or key == MISSPELLING:
            converted[name] = value
        elif key in _SCHEMA_MAP_KEYWORDS:
            converted[name] = {prop: _as_component(sub, current) for prop, sub in value.items()}
        elif isinstance(value, list):
            converted[name] = [_as_component(sub, current) for sub in value]
        elif isinstance(value, dict):
            converted[name] = _as_component(value, current)
        else:
            converted[name] = value
    return converted


def component_schemas() -> dict[str, Any]:
    """Every schema as an OpenAPI component, each `$defs` entry as a component of its own; a file
    that only holds `$defs` (defs.schema.json) is no component itself."""
    registry = load_registry()
    components: dict[str, Any] = {}

    def add(name: str, schema: Any) -> None:
        if name in components:
            raise ValueError(f"two schemas would be the component {name!r}")
        components[name] = schema

    for name in schema_names():
        contents = registry.contents(schema_uri(name))
        for def_name, definition in contents.get("$defs", {}).items():
            add(def_name, _as_component(definition, name))
        if set(contents) - _DROPPED - {"title", "description", "$comment"}:
            add(name, _as_component(contents, name))
    return components


# --- operations -> paths --------------------------------------------------------------------


def _operation_id(op: Operation, method: str) -> str:
    """`purge-queue` -> `purgeQueue`; a second method gets its name added: `statusPost`."""
    first, *rest = op.name.split("-")
    name = first + "".join(word.capitalize() for word in rest)
    return name if method == op.method else name + method.capitalize()


def _query_parameter(param: QueryParam) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": param.minimum, "maximum": param.maximum}
    if param.default is not None:
        schema["default"] = param.default
    return {
        "name": param.name,
        "in": "query",
        "required": False,
        "description": f"Milliseconds: {param.description}.",
        "schema": schema,
    }


def _parameters(op: Operation) -> list[dict[str, Any]]:
    parameters = [_query_parameter(param) for param in op.query]
    if op.takes_job_id:
        job_id = {
            "name": "job_id",
            "in": "path",
            "required": True,
            "description": "The id /run or /runsync answered with.",
            "schema": {"$ref": _COMPONENTS + "jobId"},
        }
        parameters.insert(0, job_id)
    return parameters


def _json_content(schema_name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _COMPONENTS + schema_name}}}


def _job_links() -> dict[str, Any]:
    """From an answer carrying a job's `id` to every operation on that job (OpenAPI links: what
    client generators and stateful testers follow)."""
    return {
        _operation_id(other, method): {
            "operationId": _operation_id(other, method),
            "parameters": {"job_id": "$response.body#/id"},
        }
        for other in OPERATIONS.values()
        if other.takes_job_id
        for method in other.methods
    }


def _responses(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, schema_name in sorted(op.responses.items()):
        if schema_name == ERROR_SCHEMA:
            description = ERROR_DESCRIPTIONS[status]
        else:
            description = "OK: " + _schema_title(schema_name)
        response = {"description": description, "content": _json_content(schema_name)}
        if status == 200 and op.request_schema is not None:
            response["links"] = _job_links()
        responses[str(status)] = response
    return responses


def _schema_title(name: str) -> str:
    contents = load_registry().contents(schema_uri(name))
    return str(contents.get("description") or contents.get("title") or name)


def _limits(op: Operation) -> tuple[str, dict[str, Any]]:
    """The rate limit in words and as `x-rateLimit`."""
    limit = op.rate_limit
    if limit is None:
        return "No documented rate limit.", {}
    group = [o.name for o in OPERATIONS.values() if o.rate_limit_group == op.rate_limit_group]
    words = f"Rate limit: {limit.requests} requests per {limit.window_s:g} s"
    if limit.concurrent is not None:
        words += f", {limit.concurrent} in flight"
    if len(group) > 1:
        words += f", shared by /{', /'.join(group)}"
    extension: dict[str, Any] = {
        "requests": limit.requests,
        "windowSeconds": limit.window_s,
        "concurrent": limit.concurrent,
        "group": op.rate_limit_group,
    }
    return words + ".", extension


def _webhook_callback() -> dict[str, Any]:
    """/run and /runsync with `"webhook": URL`: the POST the endpoint makes when the job ends."""
    delivery = {
        "summary": "The ended job, sent to the request's `webhook` URL.",
        "description": "Answer 200; otherwise Runpod tries twice more, 10 s apart "
        "(docs/webhooks.md).",
        "requestBody": {"required": True, "content": _json_content(WEBHOOK_SCHEMA)},
        "responses": {"200": {"description": "Received; no further attempt."}},
    }
    return {"jobEnded": {"{$request.body#/webhook}": {"post": delivery}}}


def _path_item(op: Operation) -> dict[str, Any]:
    limit_words, rate_limit = _limits(op)
    description = [limit_words]
    if op.max_body_bytes is not None:
        description.append(f"Largest body: {op.max_body_bytes // (1024 * 1024)} MiB.")
    if not op.documented:
        description.append("Not in Runpod's documentation (the official SDKs call it).")
    item: dict[str, Any] = {}
    for method in op.methods:
        operation: dict[str, Any] = {
            "operationId": _operation_id(op, method),
            "summary": op.summary,
            "description": " ".join(description),
            "tags": ["queue"],
        }
        parameters = _parameters(op)
        if parameters:
            operation["parameters"] = parameters
        if op.request_schema is not None:
            operation["requestBody"] = {
                "required": True,
                "content": _json_content(op.request_schema),
            }
        operation["responses"] = _responses(op)
        if op.request_schema is not None:
            operation["callbacks"] = _webhook_callback()
        if rate_limit:
            operation["x-rateLimit"] = rate_limit
        if op.max_body_bytes is not None:
            operation["x-maxBodyBytes"] = op.max_body_bytes
        if not op.documented:
            operation["x-documented"] = False
        item[method.lower()] = operation
    return item


# --- the document -----------------------------------------------------------------------------


def _version() -> str:
    try:
        return importlib.metadata.version("runpod-testkit")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "0+unknown"


def openapi_document(servers: Iterable[str] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document; `servers` are endpoint URLs (`{base}/{endpoint_id}`), by
    default production's and the local emulator's, with `endpoint_id` as a variable."""
    if servers is None:
        server_list = [
            {
                "url": url,
                "description": description,
                "variables": {"endpoint_id": {"default": "ENDPOINT_ID"}},
            }
            for url, description in DEFAULT_SERVERS
        ]
    else:
        server_list = [{"url": url.rstrip("/")} for url in servers]
    return {
        "openapi": OPENAPI_VERSION,
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Runpod queue-based endpoint",
            "version": _version(),
            "summary": "A Runpod serverless endpoint's queue API, as runpod-testkit checks it.",
            "description": (
                "Generated by `runpod-testkit openapi` from its operations table and JSON "
                "schemas. `x-knownProperties` and `x-knownValues` list what Runpod documents: "
                "another property or value is undocumented (drift), not invalid; with "
                "`x-misspellingIsViolation` a documented value spelled another way is invalid. "
                "`x-rateLimit` is per endpoint and operation group."
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": server_list,
        "security": [{"bearerAuth": []}],
        "tags": [{"name": "queue", "description": "Jobs of one endpoint."}],
        "paths": {op.path: _path_item(op) for op in OPERATIONS.values()},
        "components": {
            "schemas": component_schemas(),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The Runpod API key as `Authorization: Bearer KEY` (the key "
                    "alone, without `Bearer`, is accepted too).",
                }
            },
        },
    }


def openapi_json(servers: Iterable[str] | None = None) -> str:
    """The document as JSON text (two-space indent, a final newline)."""
    return json.dumps(openapi_document(servers), indent=2, ensure_ascii=False) + "\n"
