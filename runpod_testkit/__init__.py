"""runpod-testkit: contract tests, an emulator and load runs for Runpod queue endpoints.

The public entry points; submodules hold the rest (see ARCHITECTURE.md):
`runpod_testkit.emulator.mock.MockEndpoint` (the emulator inside httpx),
`runpod_testkit.emulator.server` (the emulator over HTTP), `runpod_testkit.stats` (job statistics
and the run snapshot every view renders; `runpod_testkit.jobstats` re-exports the older names).
"""

from runpod_testkit.client import ApiResponse, AsyncRunpodClient, RunpodClient
from runpod_testkit.operations import OPERATIONS, JobStatus, Operation
from runpod_testkit.probe_protocol import ProbeInput
from runpod_testkit.schemas import CheckResult, ContractValidator

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
