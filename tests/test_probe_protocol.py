from __future__ import annotations

from typing import Any

import pytest

from runpod_testkit.probe_protocol import (
    MAX_CHUNKS,
    MAX_OUTPUT_BYTES,
    MAX_SLEEP_MS,
    PADDING_KEY,
    ProbeInput,
    ProbeInputError,
)

DEFAULT_INPUT = {
    "sleep_ms": 0,
    "chunks": 0,
    "chunk_interval_ms": 0,
    "fail": None,
    "output_bytes": 0,
    "echo": None,
}


def test_empty_input_gives_the_defaults() -> None:
    probe = ProbeInput.parse({})

    assert probe == ProbeInput()
    assert probe.to_input() == DEFAULT_INPUT


def test_null_integers_mean_zero() -> None:
    probe = ProbeInput.parse(dict.fromkeys(("sleep_ms", "chunks", "output_bytes")))

    assert (probe.sleep_ms, probe.chunks, probe.output_bytes) == (0, 0, 0)


def test_unknown_keys_are_ignored() -> None:
    probe = ProbeInput.parse({"prompt": "a cat", "steps": 30, "sleep_ms": 5})

    assert probe == ProbeInput(sleep_ms=5)


def test_every_key_is_read() -> None:
    given = {
        "sleep_ms": 1,
        "chunks": 2,
        "chunk_interval_ms": 3,
        "fail": "no",
        "output_bytes": 4,
        "echo": {"nested": [1, None]},
    }

    assert ProbeInput.parse(given).to_input() == given


def test_to_input_round_trips() -> None:
    probe = ProbeInput(sleep_ms=7, chunks=3, chunk_interval_ms=2, output_bytes=9, echo="e")

    assert ProbeInput.parse(probe.to_input()) == probe


@pytest.mark.parametrize(
    ("job_input", "message_part"),
    [
        ({"sleep_ms": "10"}, "'sleep_ms' must be an integer"),
        ({"sleep_ms": 1.5}, "'sleep_ms' must be an integer"),
        ({"chunks": True}, "'chunks' must be an integer"),
        ({"chunk_interval_ms": [1]}, "'chunk_interval_ms' must be an integer"),
        ({"output_bytes": {}}, "'output_bytes' must be an integer"),
        ({"sleep_ms": -1}, f"'sleep_ms' must be from 0 to {MAX_SLEEP_MS}"),
        ({"sleep_ms": MAX_SLEEP_MS + 1}, f"'sleep_ms' must be from 0 to {MAX_SLEEP_MS}"),
        ({"chunks": MAX_CHUNKS + 1}, f"'chunks' must be from 0 to {MAX_CHUNKS}"),
        ({"chunk_interval_ms": -5}, "'chunk_interval_ms' must be from 0"),
        (
            {"output_bytes": MAX_OUTPUT_BYTES + 1},
            f"'output_bytes' must be from 0 to {MAX_OUTPUT_BYTES}",
        ),
        ({"fail": 3}, "'fail' must be a non-empty string or null"),
        ({"fail": {"error": "x"}}, "'fail' must be a non-empty string or null"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(
    job_input: dict[str, Any], message_part: str
) -> None:
    with pytest.raises(ProbeInputError, match=message_part):
        ProbeInput.parse(job_input)


@pytest.mark.parametrize(
    ("job_input", "type_name"), [(None, "NoneType"), ([1], "list"), ("x", "str"), (3, "int")]
)
def test_input_must_be_an_object(job_input: Any, type_name: str) -> None:
    with pytest.raises(ProbeInputError, match=f"must be a JSON object, got {type_name}"):
        ProbeInput.parse(job_input)


def test_limits_are_accepted() -> None:
    probe = ProbeInput.parse(
        {"sleep_ms": MAX_SLEEP_MS, "chunks": MAX_CHUNKS, "output_bytes": MAX_OUTPUT_BYTES}
    )

    assert (probe.sleep_ms, probe.chunks, probe.output_bytes) == (
        MAX_SLEEP_MS,
        MAX_CHUNKS,
        MAX_OUTPUT_BYTES,
    )


def test_long_bad_values_are_cut_in_the_message() -> None:
    with pytest.raises(ProbeInputError) as caught:
        ProbeInput.parse({"sleep_ms": "y" * 1000})

    assert len(str(caught.value)) < 120


def test_chunk_offsets_start_after_the_sleep() -> None:
    probe = ProbeInput(sleep_ms=100, chunks=3, chunk_interval_ms=25)

    assert [probe.chunk_offset_ms(i) for i in range(3)] == [100, 125, 150]
    assert ProbeInput.chunk(2) == {"index": 2}


@pytest.mark.parametrize(
    ("probe", "duration_ms"),
    [
        (ProbeInput(), 0),
        (ProbeInput(sleep_ms=40), 40),
        (ProbeInput(sleep_ms=40, chunks=1, chunk_interval_ms=10), 40),
        (ProbeInput(sleep_ms=40, chunks=4, chunk_interval_ms=10), 70),
        (ProbeInput(sleep_ms=40, chunks=4, chunk_interval_ms=10, fail="x"), 40),
    ],
)
def test_duration(probe: ProbeInput, duration_ms: int) -> None:
    assert probe.duration_ms == duration_ms


def test_final_output_echoes_without_padding_by_default() -> None:
    # A deployed probe is a generator: a non-streaming job yields its echo once.
    assert ProbeInput(echo={"a": [1]}).final_output() == [{"echo": {"a": [1]}}]
    assert ProbeInput().final_output() == [{"echo": None}]
    assert ProbeInput(fail="boom").final_output() == []


def test_final_output_is_padded_to_output_bytes() -> None:
    output = ProbeInput(echo="e", output_bytes=1000).final_output()

    assert output == [{"echo": "e", PADDING_KEY: "x" * 1000}]


def test_final_output_of_a_streaming_probe_is_the_chunk_list() -> None:
    probe = ProbeInput(chunks=3, echo="ignored", output_bytes=10)

    assert probe.streams
    assert probe.final_output() == [{"index": 0}, {"index": 1}, {"index": 2}]


def test_a_failing_probe_does_not_stream() -> None:
    probe = ProbeInput(chunks=3, fail="boom")

    assert not probe.streams
