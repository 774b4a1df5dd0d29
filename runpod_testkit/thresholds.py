"""--threshold rules: kept importable here; the code lives in runpod_testkit.stats.thresholds."""

from runpod_testkit.stats.thresholds import (
    VALID_FORMS,
    Threshold,
    ThresholdError,
    ThresholdResult,
    all_passed,
    evaluate,
    parse_thresholds,
)

__all__ = [
    "VALID_FORMS",
    "Threshold",
    "ThresholdError",
    "ThresholdResult",
    "all_passed",
    "evaluate",
    "parse_thresholds",
]
