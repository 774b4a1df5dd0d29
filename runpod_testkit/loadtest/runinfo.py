"""The "run" object of --job-stats-json: the settings a run was made with, so that
`runpod-testkit compare` can tell whether two runs measured the same workload.

Workload keys (compare refuses two runs that differ in one; see runpod_testkit.compare):
  host          "embedded" (the emulator the run started), "loopback" or "remote"
  users         users at the last completed spawn (None if the run never spawned)
  spawnRate     Locust's -r
  arrivalRate   the open model's jobs per second (0: closed loop)
  maxInFlight   the open model's cap (None: the number of users)
  userClasses   the user classes that ran, sorted
  probeInput    "sha256:..." of the --probe-input JSON (keys sorted), or None for each user
                class's default input
Other keys (reported when they differ, never a reason to refuse):
  emulator      the embedded emulator's --emulator-* values that were set (workersMax, ...)
  versions      {"runpod-testkit": ..., "locust": ...}
  startedAt, endedAt   epoch seconds of the test's start and stop
The host URL itself is not written: it names the endpoint, which is nobody else's business.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Literal

import orjson

from runpod_testkit.loadtest.failsafe import is_loopback_url
from runpod_testkit.loadtest.settings import Settings

__all__ = ["HostKind", "RunInfo", "host_kind", "probe_input_digest"]

HostKind = Literal["embedded", "loopback", "remote"]


def host_kind(host: str | None, *, embedded: bool) -> HostKind:
    if embedded:
        return "embedded"
    return "loopback" if host and is_loopback_url(host) else "remote"


def probe_input_digest(inputs: Sequence[Mapping[str, Any]] | None) -> str | None:
    """A digest of the job inputs (the same inputs give the same digest whatever their key
    order); None when each user class sends its own default."""
    if inputs is None:
        return None
    value: Any = inputs[0] if len(inputs) == 1 else list(inputs)
    encoded = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


_EMULATOR_KEYS = (
    ("workers_min", "workersMin"),
    ("workers_max", "workersMax"),
    ("cold_start_ms", "coldStartMs"),
    ("idle_timeout_s", "idleTimeoutS"),
    ("queue_delay_s", "queueDelayS"),
)


@dataclass
class RunInfo:
    """Collected while a run goes (host kind at init, users at each spawn, times at start
    and stop); `to_json` builds the "run" object."""

    host: HostKind = "embedded"
    users: int | None = None
    spawn_rate: float | None = None
    user_classes: tuple[str, ...] = ()
    started_at: float | None = None
    ended_at: float | None = None

    def to_json(self, settings: Settings) -> dict[str, Any]:
        emulator: dict[str, Any] = {}
        if self.host == "embedded":
            emulator = {
                key: value
                for attribute, key in _EMULATOR_KEYS
                if (value := getattr(settings.emulator, attribute)) is not None
            }
            emulator["faults"] = settings.emulator.faults is not None
            emulator["worker"] = settings.emulator.worker is not None
        return {
            "host": self.host,
            "users": self.users,
            "spawnRate": self.spawn_rate,
            "arrivalRate": settings.arrival_rate,
            "maxInFlight": settings.max_in_flight,
            "userClasses": sorted(self.user_classes),
            "probeInput": probe_input_digest(settings.probe_inputs),
            "emulator": emulator,
            "versions": {
                "runpod-testkit": _version("runpod-testkit"),
                "locust": _version("locust"),
            },
            "startedAt": self.started_at,
            "endedAt": self.ended_at,
        }
