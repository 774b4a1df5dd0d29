"""The job ledger: every job the suite submits goes through it, so that it can be budgeted,
counted in the report, and cancelled if it is still queued or running when the run ends.

On a paid endpoint every submission costs money: `--max-jobs` caps them (a check that would
exceed the budget is skipped with that reason), and the session's end, a failed test or Ctrl-C
cancels what is left in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from runpod_testkit.client import ApiResponse, RunpodClient, RunpodClientError

__all__ = ["JobLedger"]


class JobLedger:
    def __init__(self, max_jobs: int | None) -> None:
        self.max_jobs = max_jobs
        self.submitted = 0
        self.cancelled_at_end: list[str] = []
        self._in_flight: dict[str, RunpodClient] = {}
        self._lock = threading.Lock()

    @property
    def budget_text(self) -> str:
        return "unlimited" if self.max_jobs is None else str(self.max_jobs)

    def reserve(self, jobs: int = 1) -> None:
        """Skip the current check if `jobs` more submissions would pass --max-jobs."""
        with self._lock:
            if self.max_jobs is not None and self.submitted + jobs > self.max_jobs:
                pytest.skip(
                    f"job budget used up: {self.submitted} of --max-jobs {self.max_jobs} "
                    f"submitted; raise --max-jobs to run this check"
                )
            self.submitted += jobs

    def refund(self, jobs: int = 1) -> None:
        """Give back budget for submissions the endpoint refused (a 4xx started no job), so the
        count of jobs submitted matches what the endpoint ran."""
        with self._lock:
            self.submitted = max(0, self.submitted - jobs)

    def submit(
        self,
        client: RunpodClient,
        job_input: dict[str, Any],
        *,
        sync: bool = False,
        wait_ms: int | None = None,
        **options: Any,
    ) -> ApiResponse:
        """Submit one job (/run, or /runsync when `sync`) and track it until it is settled."""
        self.reserve()
        if sync:
            response = client.runsync(job_input, wait_ms=wait_ms, **options)
        else:
            response = client.run(job_input, **options)
        job_id = response.job_id
        if response.ok and job_id and not response.is_terminal:
            self.track(job_id, client)
        return response

    def retried(self, job_id: str, client: RunpodClient) -> None:
        """A /retry runs the job again: it counts against the budget and is tracked anew."""
        self.reserve()
        self.track(job_id, client)

    def track(self, job_id: str, client: RunpodClient) -> None:
        with self._lock:
            self._in_flight[job_id] = client

    def settled(self, job_id: str) -> None:
        with self._lock:
            self._in_flight.pop(job_id, None)

    def observe(self, response: ApiResponse) -> ApiResponse:
        """Note a job read: a terminal one no longer needs cancelling."""
        if response.is_terminal and response.job_id:
            self.settled(response.job_id)
        return response

    @property
    def in_flight(self) -> list[str]:
        with self._lock:
            return list(self._in_flight)

    def cancel_in_flight(self, log: Callable[[str], None] | None = None) -> list[str]:
        """Cancel every tracked job that is not known to be terminal; returns the ids cancelled.
        Never raises: it runs at teardown and on Ctrl-C."""
        with self._lock:
            pending = list(self._in_flight.items())
            self._in_flight.clear()
        cancelled: list[str] = []
        for job_id, client in pending:
            try:
                status = client.status(job_id, retry_429=False)
                if status.ok and status.is_terminal:
                    continue
                if client.cancel(job_id).ok:
                    cancelled.append(job_id)
                elif log is not None:
                    log(f"could not cancel job {job_id}: cancel it by hand")
            except RunpodClientError as exc:
                if log is not None:
                    log(f"could not cancel job {job_id} ({type(exc).__name__}): cancel it by hand")
        self.cancelled_at_end.extend(cancelled)
        return cancelled
