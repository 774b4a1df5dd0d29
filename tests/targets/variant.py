"""`Variant`: one endpoint, the emulator with one difference, and how it is built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from starlette.types import ASGIApp

from runpod_testkit.emulator.app import EmulatorApp
from runpod_testkit.emulator.model import EmulatorConfig, Model
from runpod_testkit.emulator.service import EmulatorService
from tests.targets.tamper import Intercept, Rewrite, Tamper

# The suite's own --emulator settings (runpod_testkit.suite.target), so that a variant differs
# from what the checks were tuned against only where the variant says.
VARIANT_CONFIG = EmulatorConfig(workers_max=4, cold_start_ms=300, idle_timeout_s=2.0, seed=7)


@dataclass(frozen=True)
class Variant:
    """One endpoint: the emulator with one difference (see tests/targets/__init__.py)."""

    name: str
    kind: Literal["break", "faithful"]
    what: str
    """One line: how this endpoint differs from the emulator."""
    caught_by: tuple[str, ...] = ()
    """Breaks: the operations of which at least one must have a failing check."""
    drift: bool = False
    """Faithful: its differences are drift, so the run fails under --strict."""
    config: EmulatorConfig = VARIANT_CONFIG
    model: type[Model] = Model
    service: type[EmulatorService] = EmulatorService
    before: Intercept | None = None
    after: Rewrite | None = None
    wrap: Callable[[ASGIApp], ASGIApp] | None = None
    job_timeout_s: float = 20.0
    """--job-timeout for its run: the slow probe job (3 s) plus a cold start, with room."""

    def build(self, api_key: str) -> tuple[ASGIApp, EmulatorApp]:
        emulator = EmulatorApp(self.config, api_key=api_key)
        if self.model is not Model or self.service is not EmulatorService:
            model = self.model(self.config, emulator.clock, on_change=emulator.model.on_change)
            emulator.model = model
            emulator.service = self.service(model, api_key=api_key)
        app: ASGIApp = emulator.starlette
        if self.before is not None or self.after is not None:
            app = Tamper(app, before=self.before, after=self.after)
        if self.wrap is not None:
            app = self.wrap(app)
        return app, emulator
