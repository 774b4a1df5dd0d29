"""The probe protocol: the job input the suite sends, and what a probe handler does with it.

`{"input": {"sleep_ms": 0, "chunks": 0, "chunk_interval_ms": 0, "fail": null,
"output_bytes": 0, "echo": null}}`: run `sleep_ms`, then either fail with the message `fail`,
or stream `chunks` chunks `{"index": i}` one every `chunk_interval_ms` (the output is the list of
chunks), or return `{"echo": echo}` padded by a string of `output_bytes` characters.

Both the emulator's simulated handler and the real worker handler (`runpod_testkit.probe`) read
the input through `ProbeInput.parse`, so they agree on every value, bad ones included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from typing import Any

__all__ = ["PROBE_KEYS", "ProbeInput", "ProbeInputError", "check_probe_input", "is_probe_input"]

MAX_SLEEP_MS = 7 * 24 * 3600 * 1000
MAX_CHUNKS = 100_000
MAX_OUTPUT_BYTES = 10 * 1024 * 1024
PADDING_KEY = "padding"


class ProbeInputError(ValueError):
    """The job input does not follow the probe protocol; the message says which key and why."""


def _int_field(data: Mapping[str, Any], key: str, maximum: int) -> int:
    value = data.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProbeInputError(f"probe input {key!r} must be an integer, got {value!r:.60}")
    if not 0 <= value <= maximum:
        raise ProbeInputError(f"probe input {key!r} must be from 0 to {maximum}, got {value}")
    return value


@dataclass(frozen=True)
class ProbeInput:
    sleep_ms: int = 0
    chunks: int = 0
    chunk_interval_ms: int = 0
    fail: str | None = None
    output_bytes: int = 0
    echo: Any = None

    @classmethod
    def parse(cls, job_input: Any) -> ProbeInput:
        """Read a job's `input` object. Keys outside the protocol are ignored, so a user's own
        input still runs as a zero-cost probe job; a protocol key with a bad value raises."""
        if not isinstance(job_input, Mapping):
            raise ProbeInputError(
                f"probe input must be a JSON object, got {type(job_input).__name__}"
            )
        fail = job_input.get("fail")
        # A worker reports a falsy `error` as success, so an empty message could never fail a job.
        if fail is not None and (not isinstance(fail, str) or not fail):
            raise ProbeInputError(
                f"probe input 'fail' must be a non-empty string or null, got {fail!r:.60}"
            )
        return cls(
            sleep_ms=_int_field(job_input, "sleep_ms", MAX_SLEEP_MS),
            chunks=_int_field(job_input, "chunks", MAX_CHUNKS),
            chunk_interval_ms=_int_field(job_input, "chunk_interval_ms", MAX_SLEEP_MS),
            fail=fail,
            output_bytes=_int_field(job_input, "output_bytes", MAX_OUTPUT_BYTES),
            echo=job_input.get("echo"),
        )

    def to_input(self) -> dict[str, Any]:
        """The `input` object for this probe job."""
        return asdict(self)

    @property
    def streams(self) -> bool:
        """True when the job yields `chunks` index chunks rather than one echo."""
        return self.fail is None and self.chunks > 0

    @staticmethod
    def chunk(index: int) -> dict[str, int]:
        """The output of chunk `index` (what a generator handler yields)."""
        return {"index": index}

    def echo_output(self) -> dict[str, Any]:
        """What a non-streaming probe yields once: `{"echo": echo}`, padded if asked."""
        output: dict[str, Any] = {"echo": self.echo}
        if self.output_bytes:
            output[PADDING_KEY] = "x" * self.output_bytes
        return output

    # A deployed probe is a generator handler for every job (runpod decides per function), so
    # each job's stream is what it yields and its output the list of those values:
    # index chunks when `chunks` > 0, else one echo chunk at `sleep_ms`; nothing when failing.

    @property
    def yield_count(self) -> int:
        if self.fail is not None:
            return 0
        return self.chunks if self.chunks > 0 else 1

    def yielded(self, index: int) -> Any:
        """The value yielded `index`-th: one /stream chunk's `output`."""
        return self.chunk(index) if self.chunks > 0 else self.echo_output()

    def chunk_offset_ms(self, index: int) -> int:
        """When the `index`-th value is yielded, in ms after the job was picked up."""
        return self.sleep_ms + index * self.chunk_interval_ms

    @cached_property
    def duration_ms(self) -> int:
        """Handler run time from pickup to the end of the job (read once per job by the
        emulator; a plan is frozen, so it is worked out once)."""
        if self.yield_count == 0:
            return self.sleep_ms
        return self.chunk_offset_ms(self.yield_count - 1)

    def final_output(self) -> list[Any]:
        """The COMPLETED job's `output` (with return_aggregate_stream): every yielded value."""
        return [self.yielded(index) for index in range(self.yield_count)]

    @cached_property
    def output(self) -> list[Any]:
        """`final_output()` built once per plan, for callers that share it and never change
        it (the emulator hands it to every job run from this plan)."""
        return self.final_output()


PROBE_KEYS: frozenset[str] = frozenset(field.name for field in fields(ProbeInput))
"""The keys of the probe protocol's input object."""


def is_probe_input(job_input: Mapping[str, Any]) -> bool:
    """True when every key of `job_input` is a probe-protocol key: the input is written for the
    probe. An input with any other key is meant for another handler (a user's own), which
    gives the probe's key names meanings of its own."""
    return all(key in PROBE_KEYS for key in job_input)


def check_probe_input(job_input: Mapping[str, Any]) -> None:
    """Refuse, before a run sends it, a probe input that breaks the protocol (a negative or
    non-numeric `sleep_ms`, `chunks`, ...): ProbeInputError names the key. Inputs for another
    handler (see `is_probe_input`) are not checked."""
    if is_probe_input(job_input):
        ProbeInput.parse(job_input)
