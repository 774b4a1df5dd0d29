"""The load run's preflight: the target is checked before the first user spawns.

The master (or the single process) runs `runpod_testkit.preflight.preflight` once at Locust's
init, for the --host given or the embedded emulator just started: a refused or missing key, a
host that does not answer, an unknown endpoint id or a non-JSON /health ends the process with
exit status 2 and one line, before any job. Workers never run it: they get the host from the
master.

In the web UI the host (and the probe input) can change before each start, so a start from the
form passes the same checks first (`install_swarm_guard`); a refused start answers the form
with the reason, which the UI shows, and no user spawns.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from flask import Response, jsonify, request
from locust.runners import STATE_RUNNING, STATE_SPAWNING

from runpod_testkit.config import ENV_API_KEY, ConfigError, validate_endpoint_url
from runpod_testkit.loadtest.settings import SettingsError, parse_probe_input
from runpod_testkit.preflight import PreflightError, preflight

if TYPE_CHECKING:
    from locust.env import Environment
    from locust.web import WebUI

__all__ = ["NOT_SUBMITTED", "PLACEHOLDER_KEY", "check_target", "install_swarm_guard"]

logger = logging.getLogger("runpod_testkit.loadtest")

PLACEHOLDER_KEY = "no-key-set"
"""Sent when RUNPOD_API_KEY is unset: an emulator without --api-key takes it; anything else
refuses it, which the preflight reports as a missing key (and a host that is not this machine
is refused without a request)."""
NOT_SUBMITTED = "(no job was submitted)"


def check_target(endpoint_url: str) -> None:
    """The preflight of a load run against `endpoint_url`, with the key the users will send;
    PreflightError says in one line why the run must not start."""
    key = os.environ.get(ENV_API_KEY, "").strip() or None
    # httpx logs every request at INFO, which Locust shows: the one line should stand alone.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    preflight(endpoint_url, key, placeholder_key=PLACEHOLDER_KEY)


def install_swarm_guard(web_ui: WebUI, environment: Environment) -> None:
    """Check the web UI form's host and probe input before Locust starts a run from it (or
    moves a run to another host); changing the user count of a running test is not held up."""
    app = web_ui.app
    assert app is not None

    def refuse_a_start_that_would_fail() -> Response | None:
        if request.method != "POST" or (request.endpoint or "").rsplit(".", 1)[-1] != "swarm":
            return None
        host = request.form.get("host", "").strip() or (environment.host or "")
        runner = environment.runner
        running = runner is not None and runner.state in (STATE_SPAWNING, STATE_RUNNING)
        if running and host == environment.host:
            return None
        problem = _form_problem(host)
        if problem is None:
            return None
        logger.error("the run was not started: %s %s", problem, NOT_SUBMITTED)
        return jsonify(
            {"success": False, "message": f"Not started: {problem}", "host": environment.host}
        )

    app.before_request(refuse_a_start_that_would_fail)


def _form_problem(host: str) -> str | None:
    """Why a run from the form must not start, or None."""
    probe_input = request.form.get("probe_input", "").strip()
    try:
        if probe_input and probe_input.lower() != "none":
            parse_probe_input(probe_input)
        if not host:
            return "no host: enter the endpoint URL, {base}/{endpoint_id}"
        check_target(validate_endpoint_url(host, name="host"))
    except SettingsError as exc:
        return f"--probe-input: {exc}"
    except (ConfigError, PreflightError) as exc:
        return str(exc)
    return None
