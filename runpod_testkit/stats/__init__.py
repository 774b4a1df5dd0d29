"""Statistics of a load run, in the order data flows through them:

- `names`: metric, outcome and request-count names (the keys of --job-stats-json);
- `series`: time-window slots, per-window latency summaries, /health samples;
- `accumulator`: `Accumulator`, what one process records (HDR histograms, counts, series);
- `wire`: the payload Locust workers ship to the master, checked before it is merged;
- `thresholds`: --threshold rules evaluated over the statistics;
- `snapshot`: `RunSnapshot`, one immutable reading of a run that every view renders;
- `views`: the JSON document, the CSV rows and the terminal table of a snapshot;
- `recorder`: `JobStats`, the accumulator with those views (what the rest of the package uses).

The HTML report and the web UI tab (runpod_testkit.report, runpod_testkit.loadtest.webui)
render a snapshot too. `runpod_testkit.jobstats` re-exports the public names for older imports.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runpod_testkit.stats.accumulator import MetricSummary
    from runpod_testkit.stats.recorder import JobStats
    from runpod_testkit.stats.series import HealthSample
    from runpod_testkit.stats.snapshot import RunSnapshot, take_snapshot
    from runpod_testkit.stats.wire import JobStatsFormatError

# Imported on first use (PEP 562): a reader of `stats.names` alone (`runpod-testkit compare`)
# does not load the accumulator and its views.
_LAZY = {
    "JobStats": "runpod_testkit.stats.recorder",
    "MetricSummary": "runpod_testkit.stats.accumulator",
    "HealthSample": "runpod_testkit.stats.series",
    "RunSnapshot": "runpod_testkit.stats.snapshot",
    "take_snapshot": "runpod_testkit.stats.snapshot",
    "JobStatsFormatError": "runpod_testkit.stats.wire",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runpod_testkit.stats' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "HealthSample",
    "JobStats",
    "JobStatsFormatError",
    "MetricSummary",
    "RunSnapshot",
    "take_snapshot",
]
