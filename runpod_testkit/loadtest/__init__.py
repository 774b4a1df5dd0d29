"""Locust load scenarios for queue endpoints, with job statistics, thresholds and an open model.

`loadtests/locustfile.py` is the entry point: it imports the user classes and calls `install()`.
The Locust-bound names (users, `install`, `current_run`) load lazily, because importing Locust
monkey-patches the process with gevent; the option and statistics modules do not import it.

    from runpod_testkit.loadtest import RunPollUser, install   # in a locustfile
    run = current_run()            # in a web UI extension on the master: run.stats, run.extra
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from runpod_testkit.loadtest.extrastats import ExtraStats
from runpod_testkit.loadtest.settings import Settings, SettingsError
from runpod_testkit.loadtest.summary import EXIT_BAD_SETUP, EXIT_THRESHOLD_FAILED, INTERRUPTED

if TYPE_CHECKING:
    from runpod_testkit.loadtest.run import LoadRun, current_run, install
    from runpod_testkit.loadtest.users import (
        CancelUser,
        JobUser,
        RunPollUser,
        RunSyncUser,
        StreamUser,
    )

__all__ = [
    "EXIT_BAD_SETUP",
    "EXIT_THRESHOLD_FAILED",
    "INTERRUPTED",
    "CancelUser",
    "ExtraStats",
    "JobUser",
    "LoadRun",
    "RunPollUser",
    "RunSyncUser",
    "Settings",
    "SettingsError",
    "StreamUser",
    "current_run",
    "install",
]

_LAZY = {
    "LoadRun": "run",
    "current_run": "run",
    "install": "run",
    "CancelUser": "users",
    "JobUser": "users",
    "RunPollUser": "users",
    "RunSyncUser": "users",
    "StreamUser": "users",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
