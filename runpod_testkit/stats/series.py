"""Time series of a load run: per-window slots that stay under a bucket budget, the per-window
latency summary (`Window`), and the /health samples (`HealthSample`, `HealthSlot`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = [
    "REPEATED_WORKER_STATES",
    "Buckets",
    "HealthSample",
    "HealthSlot",
    "Slot",
    "Window",
    "combine_counters",
]

REPEATED_WORKER_STATES = frozenset({"ready"})
"""/health worker keys that repeat another key's workers ("ready" is "idle")."""

Slot = TypeVar("Slot")


class Buckets(Generic[Slot]):
    """Per-window slots keyed by epoch second aligned to `width`.

    When there are more than `max_buckets` windows the width doubles (windows stay aligned
    to multiples of the width, so two series always line up when merged). The final width
    is the smallest power of two that fits, whatever the order of adds and merges.
    """

    def __init__(
        self,
        max_buckets: int,
        new: Callable[[], Slot],
        combine: Callable[[Slot, Slot], None],
    ) -> None:
        if max_buckets < 1:
            raise ValueError("max_buckets must be at least 1")
        self.max_buckets = max_buckets
        self.width = 1
        self.slots: dict[int, Slot] = {}
        self._new = new
        self._combine = combine
        # The window `at` found last, [start, end) and its slot: a run records into the
        # current second many times (each job's metrics and outcome, in time order).
        self._last_start = self._last_end = 0.0
        self._last_slot: Slot | None = None

    def _key(self, epoch_s: float) -> int:
        return int(epoch_s // self.width) * self.width

    def at(self, epoch_s: float) -> Slot:
        if self._last_start <= epoch_s < self._last_end:
            return self._last_slot  # type: ignore[return-value]  # set with the bounds
        key = self._key(epoch_s)
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = self._new()
            if len(self.slots) > self.max_buckets:
                self._fit()
                key = self._key(epoch_s)
                slot = self.slots[key]
        self._last_start, self._last_end, self._last_slot = key, key + self.width, slot
        return slot

    def _forget_last(self) -> None:
        """The cached window is gone (re-keyed or cleared)."""
        self._last_start = self._last_end = 0.0
        self._last_slot = None

    def _rekey(self, width: int) -> None:
        self._forget_last()
        self.width = width
        old, self.slots = self.slots, {}
        for key in sorted(old):
            self._absorb(self._key(key), old[key])

    def _absorb(self, key: int, slot: Slot) -> None:
        target = self.slots.get(key)
        if target is None:
            target = self.slots[key] = self._new()
        self._combine(target, slot)

    def _fit(self) -> None:
        while len(self.slots) > self.max_buckets:
            self._rekey(self.width * 2)

    def merge(self, other: Buckets[Slot]) -> None:
        if other.width > self.width:
            self._rekey(other.width)
        for key in sorted(other.slots):
            self._absorb(self._key(key), other.slots[key])
        self._fit()

    def coarsened(self, max_points: int) -> Buckets[Slot]:
        """A copy with at most `max_points` windows (for charts): the width is the smallest
        power-of-two multiple of this one that fits, found on the keys alone, and every slot
        is combined into the copy once."""
        if max_points < 1:
            raise ValueError("max_points must be at least 1")
        width = self.width
        keys = list(self.slots)
        while len({key // width for key in keys}) > max_points:
            width *= 2
        copy = Buckets(max_points, self._new, self._combine)
        copy.width = width
        for key in sorted(keys):
            copy._absorb(copy._key(key), self.slots[key])
        return copy

    def clear(self) -> None:
        self._forget_last()
        self.width = 1
        self.slots = {}


def _coarse_key(value: int) -> int:
    """Bucket of a value in a window's small histogram: exact below 64, then 32 per octave."""
    if value < 64:
        return value
    shift = value.bit_length() - 6
    return (value >> shift) << shift


def _coarse_top(key: int) -> int:
    if key < 64:
        return key
    return key + (1 << (key.bit_length() - 6)) - 1


class Window:
    """One time window of one metric: count, sum, max and a ~3%-resolution histogram."""

    __slots__ = ("coarse", "count", "max", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.max = 0
        self.coarse: Counter[int] = Counter()

    def add(self, value: int) -> None:
        self.count += 1
        self.total += value
        if value > self.max:  # noqa: PLR1730  # a comparison costs less than a call to max()
            self.max = value
        if value < 64:
            key = value
        else:  # _coarse_key, inline: this runs for every value a run records
            shift = value.bit_length() - 6
            key = (value >> shift) << shift
        coarse = self.coarse
        coarse[key] = coarse.get(key, 0) + 1

    def add_all(self, values: list[int]) -> None:
        """`add` each value (at least one)."""
        self.count += len(values)
        self.total += sum(values)
        high = max(values)
        if high > self.max:  # noqa: PLR1730  # as in `add`
            self.max = high
        coarse = self.coarse
        for value in values:
            if value < 64:
                key = value
            else:
                shift = value.bit_length() - 6
                key = (value >> shift) << shift
            coarse[key] = coarse.get(key, 0) + 1

    def combine(self, other: Window) -> None:
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)
        self.coarse.update(other.coarse)

    def percentile(self, percent: float) -> int:
        # Same rank rule as HDR: the smallest value with at least round(p% of count) below it.
        target = max(1, int(percent * self.count / 100 + 0.5))
        seen = 0
        for key in sorted(self.coarse):
            seen += self.coarse[key]
            if seen >= target:
                return min(_coarse_top(key), self.max)
        return self.max


@dataclass(frozen=True)
class HealthSample:
    """One /health reading: queue depth, jobs in progress and workers by state."""

    t: float  # epoch seconds
    in_queue: int
    in_progress: int
    workers: Mapping[str, int]

    @property
    def worker_count(self) -> int:
        """Workers in all states; "ready" repeats "idle" (Runpod's /health lists both, with the
        same number), so it is not counted again."""
        return sum(n for state, n in self.workers.items() if state not in REPEATED_WORKER_STATES)

    def order_key(self) -> tuple[float, int, int, tuple[tuple[str, int], ...]]:
        return (self.t, self.in_queue, self.in_progress, tuple(sorted(self.workers.items())))

    def to_json(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "inQueue": self.in_queue,
            "inProgress": self.in_progress,
            "workers": dict(sorted(self.workers.items())),
        }


class HealthSlot:
    """Keeps the latest sample of its window (samples from several workers interleave)."""

    __slots__ = ("sample",)

    def __init__(self) -> None:
        self.sample: HealthSample | None = None

    def combine(self, other: HealthSlot) -> None:
        if other.sample is None:
            return
        if self.sample is None or other.sample.order_key() > self.sample.order_key():
            self.sample = other.sample


def combine_counters(target: Counter[str], other: Counter[str]) -> None:
    target.update(other)
