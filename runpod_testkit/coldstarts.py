"""Cold starts: jobs that waited on a worker's start-up.

Exact against the emulator: a worker that starts cold (every autoscaled worker, and every worker
process) counts the jobs it picks up at the end of its start-up, in its first take of jobs; a
job queued later, while the ready worker waits for work, did not wait on it. The emulator writes
the count per worker in its --worker-log (`coldStartJobs`) and the flag per job in its --job-log
(`coldStart`); a run against the embedded emulator sums the log (`EmulatorUsage`).

Estimated live from the /health series (an estimate, labelled so everywhere it is shown): a
worker seen starting between two samples is one cold start, and each cold start is taken as one
job that waited on it (a worker is started for a queued job, and takes one job at a time). A
worker seen starting is a rise in the `initializing` count or in the count of all workers,
whichever is larger (a worker that finished starting while another began leaves the first
unchanged, the second not); workers initializing in the first sample count when jobs were
queued then, and workers still initializing in the last one (the run stopped before they took
a job; the job that woke them is "interrupted", and the emulator does not count it) do not.
Missed: a start-up shorter than the sampling interval that falls between two samples, and
starts hidden by as many stops in the same interval. Counted though no job waited:
a worker started for a job that another worker took first (or that the run's stop cancelled
and that finished starting before the last sample), and workers-min workers that start with no
queue. Taken as one: several jobs taken by one worker at once (batch job-take).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from runpod_testkit.cost import billed_workers
from runpod_testkit.stats.series import HealthSample

__all__ = ["ESTIMATE_METHOD", "ColdStarts", "count_cold_starts", "estimate_cold_starts"]

ESTIMATE_METHOD = "estimate from /health: workers seen starting (initializing), one job each"


def _initializing(sample: HealthSample) -> int:
    return sample.workers.get("initializing", 0)


def estimate_cold_starts(samples: Sequence[HealthSample]) -> int:
    """Workers seen starting in the /health samples (see the module's docstring)."""
    ordered = sorted(samples, key=lambda sample: sample.t)
    if not ordered:
        return 0
    first = ordered[0]
    starts = _initializing(first) if first.in_queue else 0
    for before, after in pairwise(ordered):
        starts += max(
            0,
            _initializing(after) - _initializing(before),
            billed_workers(after) - billed_workers(before),
        )
    # A start-up still going in the last sample (taken as the run stops) served no job.
    return max(0, starts - _initializing(ordered[-1]))


@dataclass(frozen=True)
class ColdStarts:
    """A run's cold starts: the /health estimate, and the emulator's exact count if known."""

    estimate: int
    samples: int
    exact: int | None = None
    """Jobs that waited on a worker's start-up, from the emulator's accounting."""

    def to_json(self) -> dict[str, Any]:
        """The "coldStarts" object of --job-stats-json."""
        return {
            "exact": self.exact,
            "exactSource": None if self.exact is None else "emulator",
            "estimate": self.estimate,
            "estimateMethod": ESTIMATE_METHOD,
            "samples": self.samples,
        }

    def line(self) -> str:
        """The line under the end-of-run table."""
        estimate = (
            f"estimated {self.estimate} from {self.samples} /health samples "
            "(an estimate: workers seen initializing, one job each)"
        )
        if self.exact is None:
            return f"cold starts: {estimate}\n"
        return (
            f"cold starts: {self.exact} jobs waited on a worker's start-up (the emulator's "
            f"accounting); {estimate}\n"
        )

    def html_rows(self) -> list[tuple[str, int | None]]:
        """(label, value) of the report's cold-start table; None where unknown."""
        return [
            ("jobs that waited on a start-up (exact, the emulator's accounting)", self.exact),
            ("cold starts (estimate from /health)", self.estimate),
            ("/health samples", self.samples),
        ]

    def html_section(self) -> str:
        """The report's cold-start section (`_sections.html.j2`, autoescaped)."""
        from runpod_testkit.templating import macro  # Jinja2 only when HTML is asked for

        return str(macro("_sections.html.j2", "cold_starts_section")(self.html_rows()))


def count_cold_starts(samples: Sequence[HealthSample], *, exact: int | None) -> ColdStarts | None:
    """None without /health samples and without an exact count."""
    if not samples and exact is None:
        return None
    return ColdStarts(estimate=estimate_cold_starts(samples), samples=len(samples), exact=exact)
