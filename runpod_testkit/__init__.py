"""runpod-testkit: contract tests, an emulator and load runs for Runpod queue endpoints.

The public entry points; submodules hold the rest (see ARCHITECTURE.md):
`runpod_testkit.emulator.mock.MockEndpoint` (the emulator inside httpx),
`runpod_testkit.emulator.server` (the emulator over HTTP), `runpod_testkit.stats` (job statistics
and the run snapshot every view renders; `runpod_testkit.jobstats` re-exports the older names).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runpod_testkit.client import ApiResponse, AsyncRunpodClient, RunpodClient
    from runpod_testkit.operations import OPERATIONS, JobStatus, Operation
    from runpod_testkit.probe_protocol import ProbeInput
    from runpod_testkit.schemas import CheckResult, ContractValidator

# Imported on first use (PEP 562): a command that needs neither the client nor the schemas
# (`runpod-testkit compare`) does not pay for httpx and jsonschema at start-up.
_LAZY = {
    "ApiResponse": "runpod_testkit.client",
    "AsyncRunpodClient": "runpod_testkit.client",
    "RunpodClient": "runpod_testkit.client",
    "OPERATIONS": "runpod_testkit.operations",
    "JobStatus": "runpod_testkit.operations",
    "Operation": "runpod_testkit.operations",
    "ProbeInput": "runpod_testkit.probe_protocol",
    "CheckResult": "runpod_testkit.schemas",
    "ContractValidator": "runpod_testkit.schemas",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runpod_testkit' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "OPERATIONS",
    "ApiResponse",
    "AsyncRunpodClient",
    "CheckResult",
    "ContractValidator",
    "JobStatus",
    "Operation",
    "ProbeInput",
    "RunpodClient",
]
__version__ = "0.1.0"
