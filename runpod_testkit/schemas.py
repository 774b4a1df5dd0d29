"""The schema registry and the contract validator.

`runpod_testkit/_data/schemas/` holds one JSON Schema 2020-12 document per body: package data, read
with `importlib.resources`, so a checkout, an editable install and a wheel read the same files.
Cross-file `$ref`s resolve through one `referencing.Registry`. Two keywords of our own mark what
is undocumented rather than wrong:

- `knownProperties` (array of names): any other property of the object is *drift*;
- `knownValues` (array): any other value is *drift*; with `"misspellingIsViolation": true`
  beside it, a string that is a known value spelled another way (case, `-`/`_`/spaces, a letter
  more or less: `in_queue`, `Completed`, `CANCELED`) is a *violation* instead, since clients
  compare such values exactly.

Every standard keyword failure is a *violation*. So an extra field or a `RUNNING` status is drift
(reported, fatal only under `--strict`), while a missing `id` or a negative `delayTime` breaks
the contract. The drift keywords must sit only where their result cannot change which branch of
`if`/`anyOf`/`oneOf`/`not`/`contains` matches (a test checks the shipped schemas).

Validators are compiled once per `ContractValidator` and reused. A fast path runs first: each
schema is also translated to a *strict* draft-07 schema (drift keywords turned into standard ones)
and compiled to Python code by fastjsonschema. A body that passes it has neither violation nor
drift, so it needs no further work; only a body that fails it takes the full jsonschema pass that
words the findings. Schemas using a keyword outside the translated set skip the fast path.
A schema whose `if`s test only the body's `status` (`{"properties": {"status": {"const": X}},
"required": ["status"]}`) is also compiled once per such X and once for any other status, each
`if` replaced by the branch it takes: a body is checked by the copy for its status, so no `if`
is evaluated (fastjsonschema evaluates one by raising and catching an exception).
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastjsonschema
import referencing
import referencing.exceptions
from jsonschema import validators as _jsonschema_validators  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError, ValidationError  # type: ignore[import-untyped]
from referencing.jsonschema import DRAFT202012

from runpod_testkit.operations import JobStatus, operation

if TYPE_CHECKING:
    from importlib.abc import Traversable

    from referencing._core import Resolver

__all__ = [
    "DRIFT_KEYWORDS",
    "OUTPUT_CHECKED_SCHEMAS",
    "SCHEMA_BASE_URI",
    "SCHEMA_DIR",
    "CheckResult",
    "ContractValidator",
    "Finding",
    "OutputSchemaError",
    "SchemaFileError",
    "load_output_schema",
    "load_registry",
    "resolved_schema",
    "schema_names",
    "schema_path",
    "schema_uri",
]

SCHEMA_SUFFIX = ".schema.json"
SCHEMA_BASE_URI = "https://runpod-testkit.invalid/schemas/"
"""Base of every schema's `$id` (`.invalid`: an identifier, never fetched)."""

DRIFT_KEYWORDS = frozenset({"knownProperties", "knownValues"})
OUTPUT_CHECKED_SCHEMAS = frozenset({"status.response", "runsync.response"})
"""Schemas whose COMPLETED job `output` is checked against a user's output schema."""

SCHEMA_DIR: Traversable = importlib.resources.files("runpod_testkit") / "_data" / "schemas"
"""The one place schemas are read from (a folder inside the package)."""


class SchemaFileError(RuntimeError):
    """A file in SCHEMA_DIR is missing, unreadable or inconsistent (a packaging bug)."""


class OutputSchemaError(ValueError):
    """A user-supplied output schema is missing, not JSON, or not a valid JSON Schema."""


def schema_uri(name: str) -> str:
    """The `$id` of schema `name`, e.g. `.../schemas/status.response.schema.json`."""
    return SCHEMA_BASE_URI + name + SCHEMA_SUFFIX


def schema_path(name: str) -> Traversable:
    """Schema `name`'s file in SCHEMA_DIR (`read_text()` it; a `Path` when installed as files)."""
    return SCHEMA_DIR / (name + SCHEMA_SUFFIX)


def schema_names() -> list[str]:
    """The names of all schemas in SCHEMA_DIR (file names without `.schema.json`), sorted."""
    if not SCHEMA_DIR.is_dir():
        return []
    return sorted(
        entry.name[: -len(SCHEMA_SUFFIX)]
        for entry in SCHEMA_DIR.iterdir()
        if entry.name.endswith(SCHEMA_SUFFIX) and entry.is_file()
    )


@functools.cache
def load_registry() -> referencing.Registry[Any]:
    """One registry holding every schema under its `$id`; built once per process."""
    names = schema_names()
    if not names:
        raise SchemaFileError(f"no *{SCHEMA_SUFFIX} files in {SCHEMA_DIR}; the install is broken")
    resources = []
    for name in names:
        path = schema_path(name)
        try:
            contents = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SchemaFileError(f"cannot read schema {path}: {error}") from error
        if not isinstance(contents, dict) or contents.get("$id") != schema_uri(name):
            raise SchemaFileError(f"schema {path} must be an object with $id {schema_uri(name)!r}")
        resources.append((schema_uri(name), DRAFT202012.create_resource(contents)))
    return referencing.Registry().with_resources(resources).crawl()


# --- the validator class: Draft 2020-12 plus the drift keywords ---------------------------


def _known_properties(
    validator: Any, known: list[str], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if isinstance(instance, dict):
        for name in instance:
            if name not in known:
                yield ValidationError(f"undocumented property {name!r}", path=(name,))


MISSPELLING = "misspellingIsViolation"
_SEPARATORS = re.compile(r"[\s_-]+")
_SAME_WORD_RATIO = 0.9
"""difflib's similarity at or above which two folded words are one word misspelled."""


def misspelling_of(value: str, known: Iterable[Any]) -> str | None:
    """The known string `value` is a spelling of (case, separators, a letter more or less),
    or None when it is a word of its own."""
    folded = _SEPARATORS.sub("", value).upper()
    for candidate in known:
        if not isinstance(candidate, str) or candidate == value:
            continue
        other = _SEPARATORS.sub("", candidate).upper()
        if (
            folded == other
            or difflib.SequenceMatcher(None, folded, other).ratio() >= _SAME_WORD_RATIO
        ):
            return candidate
    return None


def _known_values(
    validator: Any, known: list[Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if instance in known:
        return
    if schema.get(MISSPELLING) is True and isinstance(instance, str):
        documented = misspelling_of(instance, known)
        if documented is not None:
            yield ValidationError(
                f"{instance!r} is {documented!r} spelled another way",
                validator=MISSPELLING,
                validator_value=documented,
                instance=instance,
            )
            return
    yield ValidationError(f"undocumented value {instance!r}")


def _required(
    validator: Any, required: list[str], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    # Same rule as the standard keyword, but the error points at the missing member.
    if isinstance(instance, dict):
        for name in required:
            if name not in instance:
                yield ValidationError(f"{name!r} is a required property", path=(name,))


_ContractDraft202012 = _jsonschema_validators.extend(
    _jsonschema_validators.Draft202012Validator,
    {"knownProperties": _known_properties, "knownValues": _known_values, "required": _required},
)


# --- compiling: $refs resolved once, through the registry -----------------------------------

# Keywords whose values are data, not subschemas; a "$ref" key inside them is not a reference.
_DATA_KEYWORDS = frozenset(
    {"const", "enum", "examples", "default", "required", "knownProperties", "knownValues"}
)
# Keywords whose values map arbitrary names to subschemas.
_SCHEMA_MAP_KEYWORDS = frozenset({"properties", "patternProperties", "dependentSchemas"})
_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "$comment"})


def _inline_refs(schema: Any, resolver: Resolver[Any], outer: frozenset[int] = frozenset()) -> Any:
    if not isinstance(schema, dict):
        return schema  # a boolean schema
    inlined: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("$ref", "$defs"):
            continue  # $defs are only reference targets; they are inlined where used
        if key in _DATA_KEYWORDS:
            inlined[key] = value
        elif key in _SCHEMA_MAP_KEYWORDS:
            inlined[key] = {name: _inline_refs(sub, resolver, outer) for name, sub in value.items()}
        elif isinstance(value, list):
            inlined[key] = [_inline_refs(sub, resolver, outer) for sub in value]
        elif isinstance(value, dict):
            inlined[key] = _inline_refs(value, resolver, outer)
        else:
            inlined[key] = value
    if "$ref" not in schema:
        return inlined
    resolved = resolver.lookup(schema["$ref"])
    if id(resolved.contents) in outer:
        raise SchemaFileError(f"$ref {schema['$ref']!r} is recursive; the schemas must not be")
    target = _inline_refs(resolved.contents, resolved.resolver, outer | {id(resolved.contents)})
    if isinstance(target, dict):
        # An inner `$schema` would make jsonschema switch to the plain Draft 2020-12 class
        # there, silently dropping the drift keywords.
        target = {k: v for k, v in target.items() if k not in ("$id", "$schema")}
    if inlined.keys() <= _ANNOTATIONS:
        if target is True or target is False:
            return target
        return {**target, **{k: inlined[k] for k in ("$schema",) if k in inlined}}
    inlined["allOf"] = [*inlined.get("allOf", ()), target]
    return inlined


def resolved_schema(name: str, registry: referencing.Registry[Any] | None = None) -> Any:
    """Schema `name` with every `$ref` looked up in the registry and inlined: what the validator
    runs (no reference lookups while checking a body). The shipped schemas are not recursive."""
    registry = registry if registry is not None else load_registry()
    return _inline_refs(registry.contents(schema_uri(name)), registry.resolver(schema_uri(name)))


# --- the fast path: a strict draft-07 copy compiled by fastjsonschema -------------------------

_DRAFT_07 = "http://json-schema.org/draft-07/schema#"
# Keywords that mean the same in draft 2020-12 (as jsonschema runs it) and in draft-07 (as
# fastjsonschema compiles it, formats off, defaults not filled in). Deliberately small: `format`
# is asserted by fastjsonschema only, `pattern`/`multipleOf`/`uniqueItems` differ at the edges.
_STRICT_SAME = frozenset(
    {
        "type",
        "required",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
    }
)
_STRICT_SUBSCHEMA = frozenset({"additionalProperties", "items", "not", "if", "then", "else"})
_STRICT_SUBSCHEMA_LIST = frozenset({"allOf", "anyOf", "oneOf"})
# The strict copy turns knownValues into an enum, which already refuses a misspelling.
_STRICT_DROPPED = _ANNOTATIONS | {"examples", "default", MISSPELLING}
_SCALARS = (str, int, float, type(None))


class _NoFastPath(Exception):
    """The schema uses something the strict translation does not cover."""


def _plain_values(values: Any, types: tuple[type, ...]) -> list[Any]:
    # Both sides agree on enum/const for these (bool kept out: 1 == True in Python).
    if not isinstance(values, list) or not all(
        isinstance(v, types) and not isinstance(v, bool) for v in values
    ):
        raise _NoFastPath
    return values


class _AnyStatus:
    """`_strict`'s `status` when the body's status is not known (no `if` is resolved)."""


ANY_STATUS = _AnyStatus()
OTHER_STATUS = _AnyStatus()
"""A status equal to none of the `if` constants."""
_EXTRA_KEYS = frozenset({"additionalProperties", "patternProperties"})
"""Keywords that also decide which property names a body may have."""
_SAME_INSTANCE = frozenset({"not", "if", "then", "else"}) | _STRICT_SUBSCHEMA_LIST


def _status_test(schema: Any) -> str | None:
    """X when `schema` is exactly `{"properties": {"status": {"const": X}}, "required":
    ["status"]}` with a string X: true for a body object iff its status is X."""
    if not isinstance(schema, dict) or set(schema) != {"properties", "required"}:
        return None
    if schema["required"] != ["status"] or not isinstance(schema["properties"], dict):
        return None
    test = schema["properties"]
    if set(test) != {"status"} or not isinstance(test["status"], dict):
        return None
    if set(test["status"]) != {"const"} or not isinstance(test["status"]["const"], str):
        return None
    return test["status"]["const"]


def status_constants(schema: Any) -> set[str]:
    """The statuses that the `if`s applying to the body itself test (see `_status_test`)."""
    found: set[str] = set()
    if isinstance(schema, dict):
        if (tested := _status_test(schema.get("if"))) is not None:
            found.add(tested)
        for key in _SAME_INSTANCE & schema.keys():
            value = schema[key]
            for sub in value if isinstance(value, list) else [value]:
                found |= status_constants(sub)
    return found


def _strict(schema: Any, status: str | _AnyStatus = ANY_STATUS) -> Any:
    """The strict draft-07 copy; with a `status` (of the body this schema applies to), each
    `if` testing the status is replaced by the branch that status takes."""
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, dict):
        raise _NoFastPath
    strict: dict[str, Any] = {}
    all_of: list[Any] = []
    known: list[Any] | None = None
    tested = None if status is ANY_STATUS else _status_test(schema.get("if"))
    if tested is not None:
        branch = schema.get("then" if status == tested else "else")
        if branch is not None:
            all_of.append(_strict(branch, status))
        schema = {k: v for k, v in schema.items() if k not in ("if", "then", "else")}
    for key, value in schema.items():
        if key in _STRICT_DROPPED:
            continue
        if key in _STRICT_SAME:
            strict[key] = value
        elif key in _SAME_INSTANCE and key in _STRICT_SUBSCHEMA:
            strict[key] = _strict(value, status)
        elif key in _STRICT_SUBSCHEMA:
            strict[key] = _strict(value)
        elif key in _STRICT_SUBSCHEMA_LIST:
            if not isinstance(value, list):
                raise _NoFastPath
            all_of_here = [_strict(sub, status) for sub in value]
            if key == "allOf":
                all_of += all_of_here
            else:
                strict[key] = all_of_here
        elif key == "properties":
            if not isinstance(value, dict):
                raise _NoFastPath
            strict[key] = {name: _strict(sub) for name, sub in value.items()}
        elif key == "enum":
            strict[key] = _plain_values(value, _SCALARS)
        elif key == "const":
            strict[key] = _plain_values([value], _SCALARS)[0]
        elif key == "knownProperties":  # names: `in` on strings, same as the drift keyword
            known = _plain_values(value, (str,))
        elif key == "knownValues":  # strings only: the drift keyword tests with Python `in`
            all_of.append({"enum": _plain_values(value, (str,))})
        else:
            raise _NoFastPath
    if known is not None:
        properties = strict.get("properties", {})
        if set(properties) <= set(known) and not _EXTRA_KEYS & schema.keys():
            # The same test, compiled to a set difference (propertyNames to a loop of enums).
            strict["properties"] = {**dict.fromkeys(known, True), **properties}
            strict["additionalProperties"] = False
        else:
            all_of.append({"propertyNames": {"enum": known}})
    if all_of:
        strict["allOf"] = all_of
    return strict


def _compile_strict(schema: Any, status: str | _AnyStatus = ANY_STATUS) -> Any:
    """A fastjsonschema function raising JsonSchemaValueException unless the body (with that
    `status`, if given) has neither violation nor drift; None when the schema cannot be
    translated."""
    try:
        strict = _strict(schema, status)
    except _NoFastPath:
        return None
    if isinstance(strict, dict):
        strict = {"$schema": _DRAFT_07, **strict}
    return _compiled(json.dumps(strict, sort_keys=True))


@functools.lru_cache(maxsize=256)
def _compiled(strict_json: str) -> Any:
    # Compiling generates and execs Python code (~2 ms a schema); validators share the result.
    return fastjsonschema.compile(json.loads(strict_json), use_default=False, use_formats=False)


def _compile_strict_output(
    schema: Mapping[str, Any] | bool, registry: referencing.Registry[Any]
) -> Any:
    # Only for schemas jsonschema runs as 2020-12 with the drift keywords; older drafts differ.
    if _output_validator_class(schema, "output schema") is not _ContractDraft202012:
        return None
    if isinstance(schema, bool):
        return _compile_strict(schema)
    try:
        resource = DRAFT202012.create_resource(dict(schema))
        inlined = _inline_refs(dict(schema), registry.resolver_with_root(resource))
    except (referencing.exceptions.Unresolvable, SchemaFileError):
        return None  # the full pass reports it
    return _compile_strict(inlined)


# --- findings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One way a body departs from its schema."""

    schema: str
    pointer: str
    """JSON pointer into the body ("" is the body itself)."""
    message: str
    keyword: str
    drift: bool


@dataclass(frozen=True)
class CheckResult:
    """The findings of one check; `ok` when nothing violates the contract (drift allowed)."""

    schema: str
    violations: list[Finding]
    drift: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.violations

    def __str__(self) -> str:
        if not self.violations and not self.drift:
            return f"{self.schema}: ok"
        lines = [f"{self.schema}: {len(self.violations)} violation(s), {len(self.drift)} drift"]
        lines += [f"  violation {f.message}" for f in self.violations]
        lines += [f"  drift {f.message}" for f in self.drift]
        return "\n".join(lines)


def _pointer(path: Iterable[Any]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _show(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_JSON_TYPES = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
    (type(None), "null"),
)


def _json_type(value: Any) -> str:
    for python_type, name in _JSON_TYPES:
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def _a(word: str) -> str:
    if word == "null":
        return word
    return ("an " if word[0] in "aeiou" else "a ") + word


_COMPARISONS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}


def _expectation(error: ValidationError) -> str:
    """What the failing keyword expected, in words (without the location)."""
    keyword, expected, got = error.validator, error.validator_value, error.instance
    if keyword == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        return f"expected {' or '.join(_a(n) for n in names)}, got {_a(_json_type(got))}"
    if keyword == "required":
        reason = error.schema.get("description") if "then" in error.schema_path else None
        text = f"expected the required property {error.path[-1]!r}"
        return f"{text} ({reason})" if reason else text
    if keyword in _COMPARISONS:
        return f"expected a number {_COMPARISONS[keyword]} {expected}, got {_show(got)}"
    if keyword == "minLength":
        return f"expected a string of at least {expected} character(s), got {_show(got)}"
    if keyword == "maxLength":
        return f"expected a string of at most {expected} character(s), got {_show(got)}"
    if keyword == "const":
        return f"expected {_show(expected)}, got {_show(got)}"
    if keyword == "enum":
        return f"expected one of {', '.join(_show(v) for v in expected)}, got {_show(got)}"
    if keyword == "knownProperties":
        return f"undocumented property {error.path[-1]!r} (documented: {', '.join(expected)})"
    if keyword == MISSPELLING:
        return (
            f"{_show(got)} is the documented {_show(expected)} spelled another way: clients "
            "compare it exactly, so this is not a new value but a wrong one"
        )
    if keyword == "knownValues":
        documented = ", ".join(str(v) for v in expected)
        return f"undocumented value {_show(got)} (documented: {documented})"
    detail = error.message if len(error.message) <= 160 else error.message[:157] + "..."
    return f"expected to match {keyword!r}: {detail}"


def _finding(schema: str, error: ValidationError, prefix: str = "") -> Finding:
    pointer = prefix + _pointer(error.absolute_path)
    return Finding(
        schema=schema,
        pointer=pointer,
        message=f"{pointer or '(body)'}: {_expectation(error)}",
        keyword=str(error.validator),
        drift=error.validator in DRIFT_KEYWORDS,
    )


def _split(findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    violations = [f for f in findings if not f.drift]
    drift = [f for f in findings if f.drift]
    if violations and drift:
        # A value that is already wrong (e.g. status 5) is not also "undocumented".
        broken = {f.pointer for f in violations}
        drift = [f for f in drift if f.pointer not in broken]
    return violations, drift


# --- user output schemas ----------------------------------------------------------------------


def _output_validator_class(schema: Mapping[str, Any] | bool, origin: str) -> Any:
    found = _jsonschema_validators.validator_for(schema, default=None)
    if found is None:
        if isinstance(schema, Mapping) and "$schema" in schema:
            raise OutputSchemaError(
                f"{origin}: unknown $schema {_show(schema['$schema'])}; use "
                "https://json-schema.org/draft/2020-12/schema or leave $schema out"
            )
        return _ContractDraft202012
    if found is _jsonschema_validators.Draft202012Validator:
        return _ContractDraft202012  # lets output schemas mark drift too
    return found


def _compile_output_schema(
    schema: Mapping[str, Any] | bool, registry: referencing.Registry[Any], origin: str
) -> Any:
    validator_class = _output_validator_class(schema, origin)
    try:
        validator_class.check_schema(schema)
    except SchemaError as error:
        where = _pointer(error.absolute_path) or "(root)"
        raise OutputSchemaError(
            f"{origin} is not a valid JSON Schema: at {where}: {error.message}"
        ) from None
    return validator_class(schema, registry=registry)


def load_output_schema(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON Schema for job outputs (the `--output-schema FILE` option); raises
    OutputSchemaError saying what is wrong with the file."""
    origin = f"output schema {os.fspath(path)!r}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OutputSchemaError(f"{origin}: no such file") from None
    except IsADirectoryError:
        raise OutputSchemaError(f"{origin}: is a directory, expected a JSON file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise OutputSchemaError(f"{origin}: cannot read it: {error}") from None
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as error:
        raise OutputSchemaError(
            f"{origin} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    if not isinstance(schema, dict):
        raise OutputSchemaError(f"{origin}: expected a JSON object, got {_a(_json_type(schema))}")
    _compile_output_schema(schema, load_registry(), origin)
    return schema


def _check_output(output_validator: Any, schema_name: str, output: Any) -> list[Finding]:
    try:
        errors = list(output_validator.iter_errors(output))
    except referencing.exceptions.Unresolvable as error:
        raise OutputSchemaError(f"output schema: cannot resolve {error}") from None
    return [_finding(schema_name, error, prefix="/output") for error in errors]


# --- the validator ----------------------------------------------------------------------------


class ContractValidator:
    """Checks bodies against the schemas; build one and reuse it (validators are compiled once).

    With `output_schema`, the `output` of a COMPLETED job in a status or runsync response must
    also match it (findings point at `/output/...`; an absent output is checked as null).
    """

    def __init__(
        self,
        output_schema: Mapping[str, Any] | None = None,
        *,
        registry: referencing.Registry[Any] | None = None,
    ) -> None:
        self._registry = registry if registry is not None else load_registry()
        self._validators: dict[str, Any] = {
            name: _ContractDraft202012(resolved_schema(name, self._registry))
            for name in schema_names()
        }
        self._output_validator = (
            None
            if output_schema is None
            else _compile_output_schema(output_schema, self._registry, "output schema")
        )
        # The fast path needs a strict copy of the body schema and, if set, of the output schema.
        fast_output = (
            None if output_schema is None else _compile_strict_output(output_schema, self._registry)
        )
        self._fast_output: Any = fast_output
        self._fast: dict[str, Any] = {}
        # Per schema: the copy for each status its `if`s test, and the one for any other status.
        self._fast_by_status: dict[str, tuple[dict[str, Any], Any]] = {}
        if output_schema is None or fast_output is not None:
            for name in schema_names():
                schema = self._validators[name].schema
                compiled = _compile_strict(schema)
                if compiled is None:
                    continue
                self._fast[name] = compiled
                tested = status_constants(schema)
                if tested:
                    by_status = {status: _compile_strict(schema, status) for status in tested}
                    self._fast_by_status[name] = (by_status, _compile_strict(schema, OTHER_STATUS))

    def check(self, schema_name: str, body: Any) -> CheckResult:
        """Validate a parsed JSON body against schema `schema_name`."""
        validator = self._validators.get(schema_name)
        if validator is None:
            raise KeyError(f"unknown schema {schema_name!r}; known: {', '.join(self._validators)}")
        if self.passes(schema_name, body):
            return CheckResult(schema_name, [], [])
        findings = [_finding(schema_name, error) for error in validator.iter_errors(body)]
        if (
            self._output_validator is not None
            and schema_name in OUTPUT_CHECKED_SCHEMAS
            and isinstance(body, dict)
            and body.get("status") == JobStatus.COMPLETED
        ):
            findings += _check_output(self._output_validator, schema_name, body.get("output"))
        if not findings:
            return CheckResult(schema_name, [], [])
        return CheckResult(schema_name, *_split(findings))

    def passes(self, schema_name: str, body: Any) -> bool:
        """Whether `body` has neither violation nor drift, by the fast path alone: a body that
        passes needs no `check`. False also when the fast path cannot tell (then `check`)."""
        fast = self._fast.get(schema_name)
        if fast is None:
            return False
        status = body.get("status") if isinstance(body, dict) else None
        if type(status) is str:
            variants = self._fast_by_status.get(schema_name)
            if variants is not None:
                fast = variants[0].get(status, variants[1])
        try:
            fast(body)
            if (
                self._fast_output is not None
                and status == JobStatus.COMPLETED
                and schema_name in OUTPUT_CHECKED_SCHEMAS
            ):
                self._fast_output(body.get("output"))
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    def check_response(self, operation_name: str, status_code: int, body: Any) -> CheckResult:
        """Validate a response of an operation from the operations table by its HTTP status;
        a status the table does not list is a violation."""
        op = operation(operation_name)
        schema_name = op.responses.get(status_code)
        if schema_name is None:
            listed = ", ".join(str(code) for code in sorted(op.responses))
            finding = Finding(
                schema="",
                pointer="",
                message=f"unexpected HTTP status {status_code} from {op.name} "
                f"(expected one of {listed})",
                keyword="httpStatus",
                drift=False,
            )
            return CheckResult("", [finding], [])
        return self.check(schema_name, body)
