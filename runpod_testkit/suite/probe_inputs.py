"""Job inputs the contract checks send, by role, and `--probe-inputs FILE` to replace them.

The defaults follow the probe protocol. An endpoint that runs another handler gives a JSON file
mapping roles to its own inputs; a role it leaves out skips the checks that need it (with that
reason), so the suite never sends a handler input it does not understand. An input made only of
probe-protocol keys is taken for a probe input and must follow the protocol (a negative
`sleep_ms` is refused before the run); an input with any other key is the handler's business.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runpod_testkit.probe_protocol import ProbeInputError, check_probe_input

__all__ = ["ROLES", "ProbeInputs", "ProbeInputsError"]

ROLES: Mapping[str, str] = {
    "fast": "ends well within a second with COMPLETED",
    "slow": "runs for several seconds, then COMPLETED (runsync past ?wait, cancel while running)",
    "stream": "yields at least two stream chunks, some time apart, then COMPLETED",
    "fail": "ends with FAILED and an error message",
}

_PROBE_DEFAULTS: Mapping[str, dict[str, Any]] = {
    "fast": {"sleep_ms": 50, "echo": "contract"},
    "slow": {"sleep_ms": 3000, "echo": "contract-slow"},
    "stream": {"chunks": 3, "chunk_interval_ms": 200},
    "fail": {"sleep_ms": 50, "fail": "contract probe failure"},
}


class ProbeInputsError(ValueError):
    """A --probe-inputs file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ProbeInputs:
    inputs: Mapping[str, dict[str, Any]] = field(default_factory=lambda: dict(_PROBE_DEFAULTS))
    is_probe: bool = True
    """True when the target runs the probe handler, so outputs can be checked exactly."""

    def get(self, role: str) -> dict[str, Any] | None:
        value = self.inputs.get(role)
        return None if value is None else dict(value)

    @classmethod
    def load(cls, path: str | Path) -> ProbeInputs:
        file = Path(path)
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ProbeInputsError(
                f"--probe-inputs {file}: cannot read it ({exc.strerror})"
            ) from None
        except json.JSONDecodeError as exc:
            raise ProbeInputsError(
                f"--probe-inputs {file}: not JSON (line {exc.lineno}, column {exc.colno})"
            ) from None
        if not isinstance(data, dict):
            raise ProbeInputsError(f"--probe-inputs {file}: expected an object of roles to inputs")
        unknown = sorted(set(data) - set(ROLES))
        if unknown:
            raise ProbeInputsError(
                f"--probe-inputs {file}: unknown role(s) {', '.join(unknown)}; "
                f"known: {', '.join(ROLES)}"
            )
        for role, value in data.items():
            if not isinstance(value, dict):
                raise ProbeInputsError(
                    f"--probe-inputs {file}: role {role!r} must map to the job's `input` object"
                )
            try:
                check_probe_input(value)
            except ProbeInputError as exc:
                raise ProbeInputsError(f"--probe-inputs {file}: role {role!r}: {exc}") from None
        return cls(inputs=data, is_probe=False)
