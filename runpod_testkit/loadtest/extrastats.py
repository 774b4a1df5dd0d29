"""What a load run counts besides JobStats: stream chunks and gaps, and jobs interrupted at stop.

- `interrupted`: jobs still in flight when the run stopped, which the load generator cancelled.
  They ended because the run did, not because the endpoint failed them, so they are kept out of
  JobStats' outcomes (and out of its failure rate).
- Streams: jobs followed on /stream to the end, the chunks they carried, and the gaps between
  chunk arrivals as the client saw them (a response carrying k chunks adds one gap since the
  previous arrival and k-1 gaps of 0).

Mergeable like JobStats: workers ship `pop_transport()`, the master adds `merge_transport()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hdrh.histogram import HdrHistogram

from runpod_testkit.jobstats import HIGHEST_TRACKABLE_MS

__all__ = ["ExtraStats", "ExtraStatsFormatError"]

_SIGNIFICANT_DIGITS = 3
_GAP_PERCENTILES = (("p50", 50.0), ("p95", 95.0), ("p99", 99.0))


class ExtraStatsFormatError(ValueError):
    """A worker's payload does not have the expected shape."""


def _new_histogram() -> Any:
    return HdrHistogram(1, HIGHEST_TRACKABLE_MS, _SIGNIFICANT_DIGITS)


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ExtraStatsFormatError(f"{where}: expected an integer >= 0, got {value!r:.40}")
    return value


class ExtraStats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.interrupted = 0
        self.streams = 0
        self.chunks = 0
        self._gaps: Any = _new_histogram()
        self._gap_max = 0

    def record_interrupted(self, n: int = 1) -> None:
        self.interrupted += n

    def record_stream(self, chunks: int, gaps_ms: Iterable[float]) -> None:
        """One job followed on /stream to the end: its chunk count and inter-chunk gaps (ms)."""
        self.streams += 1
        self.chunks += chunks
        for gap in gaps_ms:
            value = min(HIGHEST_TRACKABLE_MS, max(0, round(gap)))
            self._gaps.record_value(value)
            self._gap_max = max(self._gap_max, value)

    @property
    def gap_count(self) -> int:
        return int(self._gaps.get_total_count())

    def gap_percentile(self, percent: float) -> int | None:
        if self.gap_count == 0:
            return None
        found = int(self._gaps.get_percentile_to_value_dict([percent])[percent])
        return min(found, self._gap_max)

    def stream_summary(self) -> dict[str, Any]:
        """The "stream" object of the --job-stats-json file (milliseconds)."""
        gap: dict[str, int | None] = {"count": self.gap_count}
        for label, percent in _GAP_PERCENTILES:
            gap[label] = self.gap_percentile(percent)
        gap["max"] = self._gap_max if self.gap_count else None
        return {
            "streams": self.streams,
            "chunks": self.chunks,
            "chunksPerStream": round(self.chunks / self.streams, 3) if self.streams else None,
            "gap": gap,
        }

    def format_lines(self) -> list[str]:
        """Lines for the end-of-run table; nothing when there is nothing to say."""
        lines: list[str] = []
        if self.streams:
            summary = self.stream_summary()
            gap = summary["gap"]
            shown = ", ".join(f"{key} {gap[key]}" for key in ("p50", "p95", "p99", "max"))
            lines.append(
                f"streams {self.streams}: {self.chunks} chunks "
                f"({summary['chunksPerStream']} per stream); gap between chunks (ms): {shown}"
            )
        if self.interrupted:
            lines.append(f"interrupted {self.interrupted} (in flight at stop; cancelled)")
        return lines

    # ---- merging and transport

    def merge(self, other: ExtraStats) -> None:
        self.interrupted += other.interrupted
        self.streams += other.streams
        self.chunks += other.chunks
        if other.gap_count:
            self._gaps.add(other._gaps)
            self._gap_max = max(self._gap_max, other._gap_max)

    def to_transport(self) -> dict[str, Any]:
        return {
            "interrupted": self.interrupted,
            "streams": self.streams,
            "chunks": self.chunks,
            "gaps": self._gaps.encode().decode("ascii") if self.gap_count else None,
            "gapMax": self._gap_max,
        }

    def pop_transport(self) -> dict[str, Any]:
        payload = self.to_transport()
        self.reset()
        return payload

    @classmethod
    def from_transport(cls, payload: object) -> ExtraStats:
        if not isinstance(payload, Mapping):
            raise ExtraStatsFormatError("payload: expected an object")
        stats = cls()
        stats.interrupted = _count(payload.get("interrupted"), "payload.interrupted")
        stats.streams = _count(payload.get("streams"), "payload.streams")
        stats.chunks = _count(payload.get("chunks"), "payload.chunks")
        stats._gap_max = _count(payload.get("gapMax"), "payload.gapMax")
        encoded = payload.get("gaps")
        if encoded is not None:
            if not isinstance(encoded, str):
                raise ExtraStatsFormatError("payload.gaps: expected a base64 string or null")
            try:
                gaps = HdrHistogram.decode(encoded)
            except Exception as exc:  # hdrh raises assorted types for a corrupt blob
                raise ExtraStatsFormatError(f"payload.gaps: not an HDR histogram ({exc})") from None
            if gaps.highest_trackable_value != HIGHEST_TRACKABLE_MS:
                raise ExtraStatsFormatError("payload.gaps: histogram layout differs")
            stats._gaps = gaps
        return stats

    def merge_transport(self, payload: object) -> None:
        self.merge(ExtraStats.from_transport(payload))
