"""The catalogue: every endpoint variant the contract suite's self-tests run against.

A new broken (or faithfully different) endpoint is one `Variant(...)` entry in `VARIANTS`
below, and nothing else: its name (also its URL segment), "break" or "faithful", one line of
what differs, for a break the operations of which one must fail (`caught_by`), and the
difference itself: `after=` a response rewrite, `before=` a request intercept, `model=` or
`service=` a subclass, `config=` other emulator settings, or `wrap=` an ASGI wrapper. The
building blocks are in `tests/targets/rewrites.py` (write a new one there when none fits);
tests/test_contract_suite.py runs the suite against every entry.
"""

from __future__ import annotations

from runpod_testkit.emulator.model import EmulatorConfig
from tests.targets import rewrites
from tests.targets.tamper import GzipEverything
from tests.targets.variant import Variant

VARIANTS: tuple[Variant, ...] = (
    # --- breaks the brief lists
    Variant(
        "completed-without-timings",
        "break",
        "COMPLETED jobs carry no delayTime or executionTime",
        caught_by=("status", "runsync"),
        after=rewrites.drop_timings_when_completed,
    ),
    Variant(
        "failed-without-error",
        "break",
        "FAILED jobs carry no error",
        caught_by=("status", "runsync"),
        after=rewrites.drop_error_when_failed,
    ),
    Variant(
        "delay-time-float",
        "break",
        "delayTime is a float (ms + 0.5)",
        caught_by=("status", "runsync"),
        after=rewrites.map_timings(lambda ms: ms + 0.5, "delayTime"),
    ),
    Variant(
        "delay-time-negative",
        "break",
        "delayTime is negative",
        caught_by=("status", "runsync"),
        after=rewrites.map_timings(lambda ms: -ms - 1, "delayTime"),
    ),
    Variant(
        "delay-time-string",
        "break",
        "delayTime is a string of digits",
        caught_by=("status", "runsync"),
        after=rewrites.map_timings(str, "delayTime"),
    ),
    Variant(
        "run-completed-without-id",
        "break",
        '/run answers {"status": "COMPLETED"} with no id',
        caught_by=("run",),
        after=rewrites.run_completed_without_id,
    ),
    Variant(
        "stream-repeats-chunks",
        "break",
        "/stream hands out every chunk again on every call (no drain)",
        caught_by=("stream",),
        service=rewrites.NoDrainService,
        job_timeout_s=8.0,  # its checks wait out the timeout for what never comes
    ),
    Variant(
        "stream-terminal-without-list",
        "break",
        "/stream of a finished job has no `stream` key",
        caught_by=("stream",),
        after=rewrites.stream_terminal_without_list,
    ),
    Variant(
        "retry-accepts-completed",
        "break",
        "/retry requeues a COMPLETED job",
        caught_by=("retry",),
        service=rewrites.RetryAnyTerminalService,
    ),
    Variant(
        "retry-answers-new-id",
        "break",
        "/retry answers with another job id",
        caught_by=("retry",),
        after=rewrites.retry_answers_new_id,
    ),
    Variant(
        "purge-removes-running",
        "break",
        "/purge-queue cancels running jobs too",
        caught_by=("purge-queue",),
        model=rewrites.PurgeRunningModel,
    ),
    Variant(
        "cancel-leaves-running",
        "break",
        "/cancel answers CANCELLED but a running job runs on to COMPLETED",
        caught_by=("cancel",),
        model=rewrites.CancelOnlyQueuedModel,
        after=rewrites.cancel_claims_cancelled,
    ),
    Variant(
        "health-frozen",
        "break",
        "/health counters never move (all zero)",
        caught_by=("health",),
        after=rewrites.health_frozen,
        job_timeout_s=8.0,  # its checks wait out the timeout for what never comes
    ),
    Variant(
        "auth-not-enforced",
        "break",
        "any key, or none, is accepted",
        caught_by=("key-401",),
        service=rewrites.AnyKeyService,
    ),
    Variant(
        "unknown-job-found",
        "break",
        "an unknown job id answers 200 IN_QUEUE instead of 404",
        caught_by=("unknown-job",),
        after=rewrites.unknown_job_found,
    ),
    Variant(
        "no-cancel-or-retry-route",
        "break",
        "no /cancel or /retry route: 404 for every job, so an unknown id's 404 proves nothing",
        caught_by=("unknown-job",),
        before=rewrites.no_cancel_or_retry_route,
    ),
    Variant(
        "bad-json-crashes",
        "break",
        "a malformed JSON body answers 500 text/plain instead of 400",
        caught_by=("bad-body",),
        before=rewrites.bad_json_crashes,
    ),
    Variant(
        "bad-json-accepted",
        "break",
        "a malformed JSON body is accepted as an empty input (200, a job)",
        caught_by=("bad-body",),
        before=rewrites.bad_json_accepted,
    ),
    Variant(
        "runsync-ignores-wait",
        "break",
        "/runsync holds until the job ends whatever ?wait says",
        caught_by=("runsync",),
        service=rewrites.RunsyncHoldsToTheEndService,
    ),
    Variant(
        "terminal-time-keeps-counting",
        "break",
        "each /status of a finished job reports a longer executionTime",
        caught_by=("status",),
        after=rewrites.terminal_time_keeps_counting,
    ),
    Variant(
        "terminal-status-flips-back",
        "break",
        "a finished job reads IN_PROGRESS again on later /status calls",
        caught_by=("status",),
        after=rewrites.terminal_status_flips_back,
        job_timeout_s=8.0,  # its checks wait out the timeout for what never comes
    ),
    Variant(
        "content-type-text",
        "break",
        "every response says content-type text/plain",
        caught_by=(),  # any operation will do: every one of them breaks it
        after=rewrites.text_plain,
    ),
    Variant(
        "status-answers-another-id",
        "break",
        "/status answers with an id other than the one /run gave",
        caught_by=("status",),
        after=rewrites.status_answers_another_id,
    ),
    # --- breaks nobody listed
    Variant(
        "run-answers-202",
        "break",
        "/run answers HTTP 202 instead of 200",
        caught_by=("run",),
        after=rewrites.run_answers_202,
    ),
    Variant(
        "auth-answers-403",
        "break",
        "a missing or wrong key answers 403 instead of 401",
        caught_by=("key-401",),
        after=rewrites.auth_answers_403,
    ),
    Variant(
        "status-lowercase",
        "break",
        "job states are lower-case (completed, in_queue, ...)",
        caught_by=("run", "status", "runsync"),
        after=rewrites.lowercase_status,
        job_timeout_s=6.0,  # no job ever looks finished: every wait runs to the timeout
    ),
    Variant(
        "stream-loses-first-chunk",
        "break",
        "/stream never hands out a job's first chunk",
        caught_by=("stream",),
        after=rewrites.stream_loses_first_chunk,
    ),
    Variant(
        "timings-in-seconds",
        "break",
        "delayTime and executionTime are whole seconds, not milliseconds",
        caught_by=("status", "runsync"),
        after=rewrites.map_timings(lambda ms: round(ms / 1000), "delayTime", "executionTime"),
    ),
    Variant(
        "health-without-workers",
        "break",
        "/health has no `workers` object",
        caught_by=("health",),
        after=rewrites.health_without_workers,
    ),
    Variant(
        "output-not-the-handlers",
        "break",
        "COMPLETED jobs report an output other than the probe handler's",
        caught_by=("status", "runsync"),
        after=rewrites.output_not_the_handlers,
    ),
    Variant(
        "retry-refused",
        "break",
        "/retry of a FAILED job answers 400",
        caught_by=("retry",),
        before=rewrites.retry_refused,
    ),
    Variant(
        "runsync-answers-at-once",
        "break",
        "/runsync answers IN_QUEUE at once, even for a fast job well within ?wait",
        caught_by=("runsync",),
        service=rewrites.RunsyncAnswersAtOnceService,
    ),
    Variant(
        "retry-forgets-input",
        "break",
        "/retry runs the job again with an empty input",
        caught_by=("retry",),
        model=rewrites.RetryForgetsInputModel,
    ),
    Variant(
        "result-forgotten",
        "break",
        "a finished job is deleted once read: the next /status answers 404",
        caught_by=("status",),
        after=rewrites.result_forgotten,
    ),
    # --- faithful: production may differ from the emulator this way
    Variant(
        "extra-fields",
        "faithful",
        "unknown fields in every body, chunk and counter object",
        drift=True,
        after=rewrites.add_unknown_fields,
    ),
    Variant(
        "known-optional-fields",
        "faithful",
        "`retries` on job objects; timings on /cancel's answer",
        after=rewrites.add_known_optional_fields,
    ),
    Variant(
        "ids-plain-uuid",
        "faithful",
        "job ids are plain uuids (no -u1, no sync- prefix)",
        model=rewrites.PlainUuidIdsModel,
    ),
    Variant(
        "ids-opaque",
        "faithful",
        "job ids are short opaque tokens (J_0A1B...)",
        model=rewrites.OpaqueIdsModel,
    ),
    Variant(
        "auth-raw-key-only",
        "faithful",
        "only the raw key is accepted (Bearer is refused)",
        service=rewrites.RawKeyOnlyService,
    ),
    Variant(
        "auth-bearer-only",
        "faithful",
        "only `Bearer KEY` is accepted (the raw key is refused)",
        service=rewrites.BearerOnlyService,
    ),
    Variant(
        "health-more-worker-keys",
        "faithful",
        "/health workers has more keys (starting, draining)",
        after=rewrites.health_workers(None, {"starting": 0, "draining": 0}),
    ),
    Variant(
        "health-doc-worker-keys",
        "faithful",
        "/health workers has only idle and running (the docs' example)",
        after=rewrites.health_workers(("idle", "running"), {}),
    ),
    Variant(
        "error-bodies-other-shapes",
        "faithful",
        'error bodies are {"detail": ...} or {"message": ..., "code": ...}',
        after=rewrites.error_bodies_in_other_shapes,
    ),
    Variant(
        "stream-without-id",
        "faithful",
        "/stream answers carry no id (undocumented either way)",
        after=rewrites.stream_without_id,
    ),
    Variant(
        "http-dressing",
        "faithful",
        "gzip-encoded bodies, charset in content-type, proxy headers",
        after=rewrites.dressed_headers,
        wrap=GzipEverything,
    ),
    Variant(
        "more-workers",
        "faithful",
        "2 warm workers, up to 8",
        config=EmulatorConfig(
            workers_min=2, workers_max=8, cold_start_ms=300, idle_timeout_s=2.0, seed=7
        ),
    ),
    Variant(
        "slow-cold-start",
        "faithful",
        "2.5 s cold starts, one worker",
        config=EmulatorConfig(
            workers_max=1, cold_start_ms=2500, idle_timeout_s=2.0, queue_delay_s=30.0, seed=7
        ),
    ),
)

ECHO_KEY_VARIANT = Variant(
    "echoes-key",
    "break",
    "every body repeats the Authorization header; COMPLETED jobs lack timings",
    caught_by=("status", "runsync"),
    after=rewrites.echo_key,
)


def variant(name: str) -> Variant:
    for candidate in (*VARIANTS, ECHO_KEY_VARIANT):
        if candidate.name == name:
            return candidate
    raise KeyError(f"no variant {name!r}")
