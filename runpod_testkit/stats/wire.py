"""The wire format between Locust workers and the master: what `JobStats.to_transport()`
writes and `JobStats.from_transport()` reads, with the checks that reject a malformed payload
(JobStatsFormatError) before anything of it is merged."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runpod_testkit.stats.series import Buckets, HealthSample, HealthSlot, Slot, Window

__all__ = [
    "TRANSPORT_VERSION",
    "JobStatsFormatError",
    "counter_from",
    "expect_int",
    "expect_list",
    "expect_mapping",
    "expect_number",
    "health_from",
    "health_to_transport",
    "series_from_transport",
    "series_to_transport",
    "window_from",
    "window_to_transport",
]

TRANSPORT_VERSION = 3  # 2: chunkGap, streams and chunks; 3: request counts


class JobStatsFormatError(ValueError):
    """A transport payload (from a Locust worker) does not have the expected shape."""


def expect_mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise JobStatsFormatError(f"{where}: expected an object")
    return value


def expect_list(value: object, where: str) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)):
        raise JobStatsFormatError(f"{where}: expected a list")
    return value


def expect_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise JobStatsFormatError(f"{where}: expected an integer >= 0, got {value!r:.40}")
    return value


def expect_number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise JobStatsFormatError(f"{where}: expected a number, got {value!r:.40}")
    return value


def series_to_transport(series: Buckets[Slot], encode: Callable[[Slot], Any]) -> dict[str, Any]:
    return {
        "width": series.width,
        "buckets": [[t, encode(slot)] for t, slot in sorted(series.slots.items())],
    }


def series_from_transport(
    series: Buckets[Slot],
    data: object,
    where: str,
    decode: Callable[[object, str], Slot],
) -> None:
    obj = expect_mapping(data, where)
    width = expect_int(obj.get("width"), f"{where}.width")
    if width < 1 or width & (width - 1):
        raise JobStatsFormatError(f"{where}.width: expected a power of two, got {width}")
    incoming: Buckets[Slot] = Buckets(series.max_buckets, series._new, series._combine)
    incoming.width = width
    for i, item in enumerate(expect_list(obj.get("buckets"), f"{where}.buckets")):
        pair = expect_list(item, f"{where}.buckets[{i}]")
        if len(pair) != 2:
            raise JobStatsFormatError(f"{where}.buckets[{i}]: expected [t, data]")
        t = expect_int(pair[0], f"{where}.buckets[{i}][0]")
        incoming._absorb(incoming._key(t), decode(pair[1], f"{where}.buckets[{i}][1]"))
    series.merge(incoming)


def window_to_transport(window: Window) -> list[Any]:
    return [
        window.count,
        window.total,
        window.max,
        [list(kv) for kv in sorted(window.coarse.items())],
    ]


def window_from(data: object, where: str) -> Window:
    fields = expect_list(data, where)
    if len(fields) != 4:
        raise JobStatsFormatError(f"{where}: expected [count, sum, max, histogram]")
    window = Window()
    window.count = expect_int(fields[0], f"{where}[0]")
    window.total = expect_int(fields[1], f"{where}[1]")
    window.max = expect_int(fields[2], f"{where}[2]")
    for j, entry in enumerate(expect_list(fields[3], f"{where}[3]")):
        pair = expect_list(entry, f"{where}[3][{j}]")
        if len(pair) != 2:
            raise JobStatsFormatError(f"{where}[3][{j}]: expected [bucket, count]")
        window.coarse[expect_int(pair[0], f"{where}[3][{j}][0]")] += expect_int(
            pair[1], f"{where}[3][{j}][1]"
        )
    if sum(window.coarse.values()) != window.count:
        raise JobStatsFormatError(f"{where}: histogram counts do not add up to count")
    return window


def counter_from(data: object, where: str) -> Counter[str]:
    return Counter(
        {
            name: expect_int(n, f"{where}.{name:.40}")
            for name, n in expect_mapping(data, where).items()
        }
    )


def health_to_transport(slot: HealthSlot) -> list[Any] | None:
    s = slot.sample
    return None if s is None else [s.t, s.in_queue, s.in_progress, dict(s.workers)]


def health_from(data: object, where: str) -> HealthSlot:
    slot = HealthSlot()
    if data is None:
        return slot
    fields = expect_list(data, where)
    if len(fields) != 4:
        raise JobStatsFormatError(f"{where}: expected [t, inQueue, inProgress, workers]")
    workers = {
        state: expect_int(n, f"{where}[3].{state:.40}")
        for state, n in expect_mapping(fields[3], f"{where}[3]").items()
    }
    slot.sample = HealthSample(
        t=expect_number(fields[0], f"{where}[0]"),
        in_queue=expect_int(fields[1], f"{where}[1]"),
        in_progress=expect_int(fields[2], f"{where}[2]"),
        workers=workers,
    )
    return slot
