"""The master's account of its workers in a distributed run: what each has shipped, and which
were lost (Locust marks a worker "missing" after about 3 s without a heartbeat).

A lost worker's statistics up to its last report (every 3 s, Locust's report interval) stay in
the merged totals; what it did after that, and the jobs it had in flight, are not known. The
run's verdict says so: the final table, `"workers"` in --job-stats-json, the JUnit file and exit
status 2 (the load was not the one asked for), unless the run already has a worse reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runpod_testkit.stats.recorder import JobStats

__all__ = ["WorkerLedger"]


@dataclass
class _Shipped:
    submitted: int = 0
    ended: int = 0


class WorkerLedger:
    def __init__(self) -> None:
        self._shipped: dict[str, _Shipped] = {}
        self._lost: list[str] = []

    def clear(self) -> None:
        self._shipped.clear()
        self._lost.clear()

    def note_report(self, client_id: str, jobs: JobStats) -> bool:
        """A worker's report, as merged: the jobs it submitted and saw end since the last one.
        True when these are the first jobs it ships."""
        shipped = self._shipped.setdefault(client_id, _Shipped())
        first = shipped.submitted == 0 and jobs.submitted > 0
        shipped.submitted += jobs.submitted
        shipped.ended += jobs.terminal_count
        return first

    def note_lost(self, client_id: str) -> bool:
        """Record a worker gone missing; True the first time."""
        if client_id in self._lost:
            return False
        self._lost.append(client_id)
        return True

    @property
    def lost(self) -> list[str]:
        return list(self._lost)

    def to_json(self) -> dict[str, Any]:
        """`"workers"` of --job-stats-json: every worker that reported, and the lost ones."""

        def entry(client_id: str) -> dict[str, Any]:
            shipped = self._shipped.get(client_id, _Shipped())
            return {"id": client_id, "submitted": shipped.submitted, "ended": shipped.ended}

        return {
            "reported": [entry(client_id) for client_id in sorted(self._shipped)],
            "lost": [entry(client_id) for client_id in self._lost],
        }

    def verdict_lines(self) -> list[str]:
        """One line per lost worker for the end-of-run output (empty when none was lost)."""
        lines = []
        for item in self.to_json()["lost"]:
            lines.append(
                f"LOST  worker {item['id']}: its statistics up to its last report are kept "
                f"({item['submitted']} jobs submitted, {item['ended']} ended); its last "
                "seconds and the jobs it had in flight are not"
            )
        return lines
