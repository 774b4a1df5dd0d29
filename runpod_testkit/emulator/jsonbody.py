"""JSON in and out of the emulator: orjson for speed, exact integers past 64 bits, and a 400
that names what is wrong with a body in the project's words.

orjson reads an integer outside [-2**63, 2**64) as a float and refuses to write one. A job's
input reaches the official SDK's handler through Python's json, which keeps every integer exact,
and the handler's output goes back the same way; so the emulator keeps them exact too: a body
with a run of 19 or more digits is read again with the standard library, and what orjson will
not write is written by it. `{"echo": 123456789012345678901234567890}` comes back unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

__all__ = ["BodyError", "dumps", "loads"]

_LONG_DIGITS = re.compile(rb"\d{19}")
"""Where an integer past orjson's range can be: -2**63 - 1 has 19 digits (2**64 - 1 has 20)."""


class BodyError(ValueError):
    """A request body that is not JSON; the message names what is wrong and where."""


def loads(body: bytes) -> Any:
    """The JSON value of a request body; raises BodyError."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise BodyError(
                f"request body is not valid UTF-8: byte 0x{body[bad.start]:02x} at offset "
                f"{bad.start}"
            ) from None
        raise BodyError(f"request body is not valid JSON: {exc}") from None
    if _LONG_DIGITS.search(body) is not None:
        return json.loads(body)  # exact integers; orjson has checked that it is JSON
    return value


def dumps(value: Any) -> bytes:
    """`value` as compact JSON bytes (integers past 64 bits written exactly)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # "Integer exceeds 64-bit range"
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
