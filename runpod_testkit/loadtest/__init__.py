"""Locust load scenarios for queue endpoints, with job statistics, thresholds and an open model.

`loadtests/locustfile.py` is the entry point: it imports the user classes and calls `install()`.
The Locust-bound names (users, `install`, `current_run`) load lazily, because importing Locust
monkey-patches the process with gevent; the option and statistics modules do not import it.

    from runpod_testkit.loadtest import RunPollUser, install   # in a locustfile
    run = current_run()            # on the master: run.stats, run.threshold_results()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runpod_testkit._lazy import lazy_names
from runpod_testkit.loadtest.settings import Settings, SettingsError
from runpod_testkit.loadtest.summary import EXIT_BAD_SETUP, EXIT_THRESHOLD_FAILED
from runpod_testkit.stats.names import INTERRUPTED

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

_load = lazy_names(
    __name__,
    {
        ".run": ("LoadRun", "current_run", "install"),
        ".users": ("CancelUser", "JobUser", "RunPollUser", "RunSyncUser", "StreamUser"),
    },
)


def __getattr__(name: str) -> Any:
    try:
        return _load(name)
    except ImportError as error:
        if error.name not in ("locust", "gevent"):
            raise
        raise ImportError(
            f"{name} needs Locust, which is not installed: pip install 'runpod-testkit[load]'",
            name=error.name,
        ) from None
