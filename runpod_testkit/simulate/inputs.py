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
