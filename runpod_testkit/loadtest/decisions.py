"""SLO, cost and cold starts in the CSV export and in the web UI's Job stats tab.

CSV (--job-stats-csv, after JobStats' rows): one row per figure, named as its JSON key
(`slo.attainment`, `cost.dollarsPer1000Jobs`, `coldStarts.estimate`, ...) with the value in the
count column, empty when the JSON has null. The tab: while the run goes, the SLO so far (jobs
that met it, attainment, goodput since the test started), the cost estimated from the /health
samples so far (worker-seconds, dollars, per completed job and per 1,000 jobs) and the cold
starts estimated from them; labelled estimates, as at the end. `live_estimates` computes the
cost and cold starts so far for the web UI's snapshot; the rows only render that snapshot.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runpod_testkit.coldstarts import ColdStarts, count_cold_starts
from runpod_testkit.cost import CostEstimate, estimate_cost
from runpod_testkit.loadtest.settings import Settings
from runpod_testkit.operations import JobStatus
from runpod_testkit.stats.recorder import JobStats
from runpod_testkit.stats.snapshot import RunSnapshot
from runpod_testkit.stats.views import csv_rows

__all__ = ["CSV_FIGURES", "decision_csv_rows", "decision_tab_rows", "live_estimates", "write_csv"]

CSV_FIGURES: Mapping[str, tuple[str, ...]] = {
    "slo": ("jobs", "met", "attainment", "goodputPerS"),
    "cost": (
        "source",
        "workerSeconds",
        "workerSecondsPerJob",
        "pricePerS",
        "dollars",
        "dollarsPerJob",
        "dollarsPer1000Jobs",
        "dollarsPerDayAtThisRate",
    ),
    "coldStarts": ("exact", "estimate"),
}
"""The figures of each JSON object that the CSV carries, in order."""

Row = dict[str, str | int | float | None]


def decision_csv_rows(extra: Mapping[str, Any], width: int) -> list[list[str]]:
    """Rows `width` cells wide for the "slo", "cost" and "coldStarts" objects present."""
    rows: list[list[str]] = []
    for key, figures in CSV_FIGURES.items():
        document = extra.get(key)
        if not isinstance(document, Mapping):
            continue
        for figure in figures:
            value = document.get(figure)
            cell = "" if value is None else f"{value:g}" if isinstance(value, float) else value
            rows.append([f"{key}.{figure}", str(cell), *[""] * (width - 2)])
    return rows


def write_csv(snapshot: RunSnapshot, path: str | Path, extra: Mapping[str, Any]) -> None:
    """--job-stats-csv: the snapshot's rows, then the SLO, cost and cold-start rows."""
    rows = csv_rows(snapshot)
    rows += decision_csv_rows(extra, len(rows[0]))
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)


def live_estimates(
    stats: JobStats, settings: Settings, started_at: float | None, now: float | None = None
) -> tuple[float | None, CostEstimate | None, ColdStarts | None]:
    """What a snapshot of a run still going needs besides its statistics: the time since the
    test started (the SLO's goodput so far), the cost and the cold starts estimated from the
    /health samples so far (no emulator accounting before the emulator has stopped)."""
    now = time.time() if now is None else now
    duration = None if started_at is None else max(0.0, now - started_at) or None
    samples = stats.health_samples()
    cost = estimate_cost(
        samples,
        completed_jobs=stats.outcomes.get(JobStatus.COMPLETED, 0),
        price_per_s=settings.gpu_price_per_s,
        duration_s=duration,
        price_source=None if settings.gpu_price is None else settings.gpu_price.describe(),
    )
    cold = count_cold_starts(samples, exact=None) if samples else None
    return duration, cost, cold


def decision_tab_rows(snapshot: RunSnapshot) -> list[Row]:
    """The tab's SLO, cost and cold-start rows: the snapshot's (see `live_estimates`)."""
    rows: list[Row] = []
    slo = snapshot.slo
    if slo is not None:
        attainment = slo["attainment"]
        goodput = slo["goodputPerS"]
        rows.append(
            {
                "statistic": f"SLO {', '.join(slo['rules'])}",
                "count": slo["met"],
                "detail": (
                    f"met by {slo['met']} of {slo['jobs']} ended jobs"
                    + ("" if attainment is None else f" (attainment {attainment:.2%})")
                    + ("" if goodput is None else f"; goodput {goodput:g} jobs/s")
                ),
            }
        )
    cost = snapshot.cost
    if cost is not None:
        document = cost.to_json()
        detail = f"estimated from {cost.samples} /health samples, peak {cost.peak_workers} workers"
        if document["dollars"] is not None:
            detail += f"; ${document['dollars']:.4f}"
            if document["dollarsPerJob"] is not None:
                detail += (
                    f", ${document['dollarsPerJob']:.6f} per completed job, "
                    f"${document['dollarsPer1000Jobs']:.4f} per 1,000 jobs"
                )
        rows.append(
            {
                "statistic": "cost (worker-seconds, estimate)",
                "count": round(cost.worker_seconds, 1),
                "detail": detail,
            }
        )
    cold = snapshot.cold_starts
    if cold is not None and cold.samples:
        rows.append(
            {
                "statistic": "cold starts (estimate)",
                "count": cold.estimate,
                "detail": "workers seen starting (initializing) in /health, one waiting job each",
            }
        )
    return rows
