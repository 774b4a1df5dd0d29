"""Job statistics of a load run: kept importable here; the code lives in runpod_testkit.stats
(accumulator, series, wire format, thresholds, snapshot, views)."""

from runpod_testkit.stats import names
from runpod_testkit.stats.accumulator import MetricSummary
from runpod_testkit.stats.names import *  # noqa: F403 - the metric, outcome and request names
from runpod_testkit.stats.recorder import JobStats
from runpod_testkit.stats.series import HealthSample
from runpod_testkit.stats.wire import JobStatsFormatError

__all__ = ["HealthSample", "JobStats", "JobStatsFormatError", "MetricSummary"]
__all__ += names.__all__
