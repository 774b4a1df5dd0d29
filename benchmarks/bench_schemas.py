"""Cost of one contract check (schema + drift) per response body, as Locust pays it under load.

    python benchmarks/bench_schemas.py [--number 20000]

Prints microseconds per check (best of 5 repeats) for typical bodies. Clean bodies take the
compiled fastjsonschema path; the drift and violation cases pay for the full jsonschema pass too.
Not a test: figures go to the README with the machine they ran on.
"""

from __future__ import annotations

import argparse
import functools
import platform
import timeit
from typing import Any

from runpod_testkit.schemas import ContractValidator

_COMPLETED = {
    "id": "a-u1",
    "status": "COMPLETED",
    "delayTime": 12,
    "executionTime": 30,
    "output": [{"echo": None}],
}


def cases() -> dict[str, tuple[ContractValidator, str, Any]]:
    plain = ContractValidator()
    with_output = ContractValidator(output_schema={"type": "array"})
    return {
        "status {id, status}": (plain, "status.response", {"id": "a-u1", "status": "IN_QUEUE"}),
        "status COMPLETED, small output": (plain, "status.response", _COMPLETED),
        "  the same with --output-schema": (with_output, "status.response", _COMPLETED),
        "run": (plain, "run.response", {"id": "a-u1", "status": "IN_QUEUE"}),
        "stream, 3 chunks": (
            plain,
            "stream.response",
            {"status": "IN_PROGRESS", "stream": [{"output": {"index": i}} for i in range(3)]},
        ),
        "health": (
            plain,
            "health.response",
            {
                "jobs": {"completed": 1, "failed": 5, "inProgress": 0, "inQueue": 2, "retried": 0},
                "workers": {"idle": 0, "running": 0},
            },
        ),
        "status with one drift (RUNNING)": (
            plain,
            "status.response",
            {"id": "a", "status": "RUNNING"},
        ),
        "status with one violation": (plain, "status.response", {"id": "", "status": "IN_QUEUE"}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="checks per repeat")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    for label, (validator, name, body) in cases().items():
        check = functools.partial(validator.check, name, body)
        seconds = min(timeit.repeat(check, number=args.number, repeat=5))
        print(f"{label:36s} {seconds / args.number * 1e6:7.1f} us")
    build = min(timeit.repeat(ContractValidator, number=20, repeat=3)) / 20
    print(f"{'building a ContractValidator':36s} {build * 1e3:7.2f} ms")


if __name__ == "__main__":
    main()
