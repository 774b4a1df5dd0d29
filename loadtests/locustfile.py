"""Load scenarios for a Runpod queue endpoint, with job statistics (see the README, "Load runs").

    locust -f loadtests/locustfile.py                # web UI on :8089, an emulator as target
    locust -f loadtests/locustfile.py --headless -u 20 -r 10 --run-time 20s
    locust -f loadtests/locustfile.py --host https://api.runpod.ai/v2/ENDPOINT_ID RunPollUser

Users: RunPollUser (/run, then /status), RunSyncUser (/runsync, then /status if still running),
StreamUser (/run, then /stream until drained), CancelUser (/run, /cancel, then /status),
WebhookUser (/run with a webhook; the job ends when its delivery arrives, no /status). With no
class named, the first three run (weights 4:2:2); CancelUser and WebhookUser run when named
(CancelUser's jobs end CANCELLED on purpose; WebhookUser needs a reachable receiver).

With no --host an emulator is started on loopback and targeted. The API key comes from
RUNPOD_API_KEY. Options of this suite (also settable in locust.conf, and as LOCUST_* environment
variables: --probe-input is LOCUST_PROBE_INPUT, and so on). `locust -f loadtests/locustfile.py
--help` cannot list them: Locust prints its help before it imports the locustfile. Run this file
itself instead, `python loadtests/locustfile.py --help`; it is Locust with the suite loaded first:
  --probe-input JSON|@FILE   the job input, or a list of inputs to pick from at random
  --poll-interval S          seconds between /status polls (0.5)
  --runsync-wait MS          RunSyncUser's ?wait (10000)
  --job-timeout S            give up on (and cancel) a job after this long (600)
  --arrival-rate R           open model: R jobs/s in total, Poisson arrivals; users carry them
  --max-in-flight N          open model: cap on jobs in flight (default: the number of users)
  --health-interval S        seconds between /health samples; 0 turns it off (2)
  --pacing auto|on|off       stay under the documented rate limits (auto: remote hosts only)
  --max-retries N            resends after 429, 5xx or a lost connection, where safe (5)
  --refusal-limit N          stop the run (exit 2) after N consecutive refusals (50)
  --threshold RULE           e.g. 'delayTime:p95<2000', 'failures:rate<1%' (repeatable; exit 3)
  --job-stats-json/-csv/-html FILE                          write the job statistics
  --webhook-url URL --webhook-listen HOST:PORT   WebhookUser's receiver behind a tunnel
  --emulator-workers-min/-workers-max/-cold-start-ms/-idle-timeout-s/-queue-delay-s/-job-log
                             settings of the embedded emulator
"""

import sys

try:
    import locust.main  # first: Locust monkey-patches the process at import
except ImportError as error:
    raise SystemExit(
        f"the load suite needs Locust: pip install 'runpod-testkit[load]' ({error})"
    ) from None

from runpod_testkit.loadtest import CancelUser, RunPollUser, RunSyncUser, StreamUser, install
from runpod_testkit.loadtest.webhooks import WebhookUser

__all__ = ["CancelUser", "RunPollUser", "RunSyncUser", "StreamUser", "WebhookUser"]

install(default_users=(RunPollUser, RunSyncUser, StreamUser))

if __name__ == "__main__":
    # `python loadtests/locustfile.py [LOCUST ARGS]`: Locust with this file as -f, and the
    # suite's options already registered, so --help lists them.
    sys.argv = ["locust", "-f", __file__, *sys.argv[1:]]
    sys.exit(locust.main.main())
