"""`JobStats`: the accumulator of one process with the views of what it holds (a snapshot,
the --job-stats-json document, CSV, the end-of-run table).

The accumulator knows nothing of its views, so the views can name it: this module sits above
both."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from runpod_testkit.stats.accumulator import Accumulator
from runpod_testkit.stats.snapshot import RunSnapshot, take_snapshot
from runpod_testkit.stats.thresholds import ThresholdResult
from runpod_testkit.stats.views import csv_rows, format_table, json_document, write_csv

__all__ = ["JobStats"]


class JobStats(Accumulator):
    """Histograms, outcome counts and time series of one load run (or one worker's share),
    and their views."""

    def snapshot(
        self, thresholds: Iterable[ThresholdResult] = (), *, charts: bool = True
    ) -> RunSnapshot:
        """One immutable snapshot of what this object holds (see stats/snapshot.py)."""
        return take_snapshot(self, thresholds, charts=charts)

    def to_json(self, thresholds: Iterable[ThresholdResult] = ()) -> dict[str, Any]:
        """The --job-stats-json document (a stable interface: docs/interfaces.md#job-stats-json),
        plus "stream", "requests" and "pacing" objects after the keys that page names."""
        return json_document(self.snapshot(thresholds, charts=False))

    def to_report_json(self, thresholds: Iterable[ThresholdResult] = ()) -> dict[str, Any]:
        """`to_json()` plus a "series" key (for reports; --job-stats-json uses `to_json`)."""
        return {**self.to_json(thresholds), "series": self.series_json()}

    def write_json(self, path: str | Path, thresholds: Iterable[ThresholdResult] = ()) -> None:
        """Write `to_json()` (the --job-stats-json file)."""
        text = json.dumps(self.to_json(thresholds), indent=2) + "\n"
        Path(path).write_text(text, encoding="utf-8")

    def csv_rows(self) -> list[list[str]]:
        """See runpod_testkit.stats.views.csv_rows."""
        return csv_rows(self.snapshot(charts=False))

    def write_csv(self, target: str | Path | IO[str]) -> None:
        """Write `csv_rows()` to a path or an open text file."""
        write_csv(self.snapshot(charts=False), target)

    def format_table(self, thresholds: Iterable[ThresholdResult] = ()) -> str:
        """Plain-text summary for the end of a headless run."""
        return format_table(self.snapshot(thresholds, charts=False))
