"""Arrivals (when jobs are submitted) and durations (how long each runs), in seconds."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path


def poisson_arrivals(rate_per_s: float, duration_s: float, seed: int = 0) -> list[float]:
    """Submission times of a Poisson process of `rate_per_s` over [0, duration_s)."""
    if rate_per_s <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    rng = random.Random(seed)
    times: list[float] = []
    t = rng.expovariate(rate_per_s)
    while t < duration_s:
        times.append(t)
        t += rng.expovariate(rate_per_s)
    return times


def read_rate_schedule(path: str | Path) -> list[tuple[float, float]]:
    """A CSV of `time,rate` rows (seconds, jobs/s), sorted by time; a header row is allowed.
    Each rate holds from its time until the next row's time."""
    rows: list[tuple[float, float]] = []
    with open(path, newline="", encoding="utf-8") as handle:
        for line_number, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            try:
                time_s, rate = float(row[0]), float(row[1])
            except (ValueError, IndexError):
                if line_number == 1:
                    continue  # the header
                raise ValueError(f"{path}:{line_number}: expected time,rate; got {row!r}") from None
            if rate < 0 or (rows and time_s <= rows[-1][0]):
                raise ValueError(f"{path}:{line_number}: times must increase, rates be >= 0")
            rows.append((time_s, rate))
    if not rows:
        raise ValueError(f"{path}: no time,rate rows")
    return rows


def scheduled_arrivals(
    schedule: list[tuple[float, float]], end_s: float, seed: int = 0
) -> list[float]:
    """A piecewise-constant Poisson process following `schedule` until `end_s`."""
    rng = random.Random(seed)
    times: list[float] = []
    for index, (start, rate) in enumerate(schedule):
        stop = schedule[index + 1][0] if index + 1 < len(schedule) else end_s
        stop = min(stop, end_s)
        if rate <= 0:
            continue
        # Memorylessness: restarting the process at each boundary keeps it Poisson.
        t = start + rng.expovariate(rate)
        while t < stop:
            times.append(t)
            t += rng.expovariate(rate)
    return times


def job_log_arrivals(path: str | Path) -> tuple[list[float], list[float | None]]:
    """Submission times (seconds from the first) and executionTimes (seconds, None if the
    job never ran) from an emulator --job-log file."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                records.append(json.loads(line))
    records.sort(key=lambda record: record["submittedAt"])
    if not records:
        raise ValueError(f"{path}: no job records")
    first = records[0]["submittedAt"]
    times = [(record["submittedAt"] - first) / 1000 for record in records]
    durations = [
        None if record.get("executionTime") is None else record["executionTime"] / 1000
        for record in records
    ]
    return times, durations


def sample_durations(spec: str, count: int, seed: int = 0) -> list[float]:
    """`count` job durations in seconds from a spec: `2.5` (fixed), `uniform:A:B`,
    `exp:MEAN` or `lognormal:MEDIAN:SIGMA`."""
    rng = random.Random(seed)
    kind, _, rest = spec.partition(":")
    try:
        if not rest:
            value = float(kind)
            if value < 0:
                raise ValueError
            return [value] * count
        params = [float(part) for part in rest.split(":")]
        if kind == "uniform" and len(params) == 2 and 0 <= params[0] <= params[1]:
            return [rng.uniform(params[0], params[1]) for _ in range(count)]
        if kind == "exp" and len(params) == 1 and params[0] > 0:
            return [rng.expovariate(1 / params[0]) for _ in range(count)]
        if kind == "lognormal" and len(params) == 2 and params[0] > 0 and params[1] >= 0:
            return [rng.lognormvariate(math.log(params[0]), params[1]) for _ in range(count)]
    except ValueError:
        pass
    raise ValueError(
        f"duration {spec!r}: expected seconds, uniform:A:B, exp:MEAN or lognormal:MEDIAN:SIGMA"
    )


def _job_stats_document(path: str | Path) -> dict[str, object]:
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not a job-stats JSON object")
    return document


def is_job_stats_json(path: str | Path) -> bool:
    """True for a --job-stats-json document (one JSON object with "metrics"), False for a
    --job-log (one job record per line)."""
    try:
        document = _job_stats_document(path)
    except ValueError:  # several lines of JSON: a job log
        return False
    return "metrics" in document


def job_stats_arrivals(path: str | Path, seed: int = 0) -> list[float]:
    """Submission times from a job-stats JSON that carries its time series ("series.jobs":
    jobs submitted per window, as `JobStats.to_report_json` writes them): each window's
    submissions spread uniformly at random over the window. A document without the series
    (a plain --job-stats-json) has no submission times: ValueError."""
    document = _job_stats_document(path)
    series = document.get("series")
    jobs = series.get("jobs") if isinstance(series, dict) else None
    if not isinstance(jobs, dict) or not isinstance(jobs.get("points"), list):
        raise ValueError(
            f"{path}: no submission times in it (no series.jobs); replay the run's --job-log, "
            "or give its rate with --rate"
        )
    width = float(jobs["width"])
    rng = random.Random(seed)
    points = [p for p in jobs["points"] if isinstance(p, dict) and p.get("submitted")]
    if not points:
        raise ValueError(f"{path}: series.jobs has no submitted jobs")
    first = min(float(p["t"]) for p in points)
    times = [
        float(p["t"]) - first + rng.random() * width
        for p in points
        for _ in range(int(p["submitted"]))
    ]
    times.sort()
    return times


def histogram_durations(path: str | Path, count: int, seed: int = 0) -> list[float]:
    """`count` durations in seconds drawn from the executionTime histogram of a recorded run
    (the "histograms" object of its --job-stats-json: HDR, exact below 2,048 ms)."""
    from hdrh.histogram import HdrHistogram

    document = _job_stats_document(path)
    histograms = document.get("histograms")
    encoded = histograms.get("executionTime") if isinstance(histograms, dict) else None
    if not isinstance(encoded, str):
        raise ValueError(f"{path}: no executionTime histogram (histograms.executionTime) in it")
    try:
        histogram = HdrHistogram.decode(encoded)
    except Exception as exc:  # hdrh raises assorted types for a corrupt blob
        raise ValueError(f"{path}: histograms.executionTime is not an HDR histogram") from exc
    values: list[float] = []
    weights: list[int] = []
    for item in histogram.get_recorded_iterator():
        values.append(item.value_iterated_to / 1000)
        weights.append(item.count_at_value_iterated_to)
    if not values:
        raise ValueError(f"{path}: the executionTime histogram is empty")
    rng = random.Random(seed)
    return rng.choices(values, weights=weights, k=count)
