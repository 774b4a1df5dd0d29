"""runpod-testkit: contract tests, an emulator and load runs for Runpod queue endpoints.

The public entry points; submodules hold the rest (see ARCHITECTURE.md):
`runpod_testkit.emulator.mock.MockEndpoint` (the emulator inside httpx),
`runpod_testkit.emulator.server` (the emulator over HTTP), `runpod_testkit.stats` (job statistics
and the run snapshot every view renders; `runpod_testkit.jobstats` re-exports the older names).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runpod_testkit._lazy import lazy_names

if TYPE_CHECKING:
    from runpod_testkit.client import ApiResponse, AsyncRunpodClient, RunpodClient
    from runpod_testkit.operations import OPERATIONS, JobStatus, Operation
    from runpod_testkit.probe_protocol import ProbeInput
    from runpod_testkit.schemas import CheckResult, ContractValidator

# Imported on first use (PEP 562): a command that needs neither the client nor the schemas
# (`runpod-testkit compare`) does not pay for httpx and jsonschema at start-up.
__getattr__ = lazy_names(
    __name__,
    {
        "runpod_testkit.client": ("ApiResponse", "AsyncRunpodClient", "RunpodClient"),
        "runpod_testkit.operations": ("OPERATIONS", "JobStatus", "Operation"),
        "runpod_testkit.probe_protocol": ("ProbeInput",),
        "runpod_testkit.schemas": ("CheckResult", "ContractValidator"),
    },
)


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
