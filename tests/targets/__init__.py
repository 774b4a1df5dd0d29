"""Endpoints for the contract suite's self-tests, served over real HTTP on loopback.

Each variant is the emulator with one difference: a BREAK of the contract, which the suite must
fail while naming the broken operation, or a FAITHFUL difference that production allows, which
the suite must pass. One uvicorn server serves a set of variants: `/v2/{variant}/...` goes to
that variant's own emulator, so the suite's endpoint URL for a variant is `{base}/{variant}`.

The package, by concern:
- `tamper.py`: `Tamper`, the ASGI wrapper behind most differences;
- `rewrites.py`: the differences (rewrites, intercepts, Model and EmulatorService subclasses);
- `variant.py`: `Variant`, one endpoint and how it is built;
- `variants.py`: the catalogue, `VARIANTS` (a new endpoint is one entry there);
- `serving.py`: serving variants on loopback, and `ForwardingProxy`.

A difference is made in one of three places:
- `Tamper`, an ASGI wrapper that can answer a request itself, change its headers or body, and
  rewrite the response (status, headers, JSON body) on its way out;
- a subclass of the emulator's `Model` (what happens to jobs);
- a subclass of `EmulatorService` (how an operation is answered).

    with serving(VARIANTS, api_key="k") as base_url:
        endpoint_url = f"{base_url}/{variant.name}"
"""

from tests.targets.serving import ForwardingProxy, serving, serving_apps
from tests.targets.tamper import Incoming, Outgoing, Tamper
from tests.targets.variant import VARIANT_CONFIG, Variant
from tests.targets.variants import ECHO_KEY_VARIANT, VARIANTS, variant

__all__ = [
    "ECHO_KEY_VARIANT",
    "VARIANTS",
    "VARIANT_CONFIG",
    "ForwardingProxy",
    "Incoming",
    "Outgoing",
    "Tamper",
    "Variant",
    "serving",
    "serving_apps",
    "variant",
]
