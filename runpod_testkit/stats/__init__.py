"""Statistics of a load run, in the order data flows through them:

- `names`: metric, outcome and request-count names (the keys of --job-stats-json);
- `series`: time-window slots, per-window latency summaries, /health samples;
- `accumulator`: `JobStats`, what one process records (HDR histograms, counts, series);
- `wire`: the payload Locust workers ship to the master, checked before it is merged;
- `thresholds`: --threshold rules evaluated over the statistics;
- `snapshot`: `RunSnapshot`, one immutable reading of a run that every view renders;
- `views`: the JSON document, the CSV rows and the terminal table of a snapshot.

The HTML report and the web UI tab (runpod_testkit.report, runpod_testkit.loadtest.webui)
render a snapshot too. `runpod_testkit.jobstats` re-exports the public names for older imports.
"""

from runpod_testkit.stats.accumulator import JobStats, MetricSummary
from runpod_testkit.stats.series import HealthSample
from runpod_testkit.stats.snapshot import RunSnapshot, take_snapshot
from runpod_testkit.stats.wire import JobStatsFormatError

__all__ = [
    "HealthSample",
    "JobStats",
    "JobStatsFormatError",
    "MetricSummary",
    "RunSnapshot",
    "take_snapshot",
]
