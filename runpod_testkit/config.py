"""Which endpoint to talk to, and with which key: options and environment variables.

The stable environment variables (docs/interfaces.md#environment):

- `RUNPOD_API_KEY`: the API key.
- `ENDPOINT_ID`: an endpoint id on the base URL.
- `RUNPOD_ENDPOINT_URL`: a whole endpoint URL, `{base}/{endpoint_id}`; wins over `ENDPOINT_ID`.
- `RUNPOD_ENDPOINT_BASE_URL`: the base URL (the official SDK's variable), default
  `https://api.runpod.ai/v2`.

Explicit values (command-line options, keyword arguments) win over the environment. An empty
variable counts as unset, because CI systems expand a missing secret to an empty string.
Errors name the option or variable at fault and say what to do; they never contain the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from runpod_testkit.operations import OPERATIONS

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_ENDPOINT_ID",
    "ENV_ENDPOINT_URL",
    "ConfigError",
    "Target",
    "endpoint_url_for",
    "resolve_target",
    "validate_api_key",
    "validate_base_url",
    "validate_endpoint_id",
    "validate_endpoint_url",
]

DEFAULT_BASE_URL = "https://api.runpod.ai/v2"
ENV_API_KEY = "RUNPOD_API_KEY"
ENV_ENDPOINT_ID = "ENDPOINT_ID"
ENV_ENDPOINT_URL = "RUNPOD_ENDPOINT_URL"
ENV_BASE_URL = "RUNPOD_ENDPOINT_BASE_URL"

_EXAMPLE_URLS = "https://api.runpod.ai/v2/abc123 or http://127.0.0.1:8000/v2/abc123"
# Characters that stay literal in a URL path segment (RFC 3986 "unreserved").
_ENDPOINT_ID_PATTERN = re.compile(r"[A-Za-z0-9._~-]+")
# First path segment of every operation ("run", "status", ...): an endpoint URL must stop before it.
_OPERATION_SEGMENTS = frozenset(op.path.split("/")[1] for op in OPERATIONS.values())
_SHOWN_CHARS = 80


class ConfigError(ValueError):
    """A missing or malformed setting; the message names it and says how to fix it."""


@dataclass(frozen=True)
class Target:
    """A resolved endpoint: its URL, the key to use, and where the URL came from."""

    endpoint_url: str
    api_key: str | None = field(default=None, repr=False)
    source: str = "endpoint_url"
    """The option or variable the endpoint came from, for reports and error messages."""

    @property
    def endpoint_id(self) -> str:
        return self.endpoint_url.rsplit("/", 1)[1]

    @property
    def base_url(self) -> str:
        return self.endpoint_url.rsplit("/", 1)[0]

    @property
    def is_production(self) -> bool:
        """True when the endpoint is on Runpod's own API host (jobs there cost money)."""
        return urlsplit(self.endpoint_url).hostname == urlsplit(DEFAULT_BASE_URL).hostname


def _shown(value: str) -> str:
    """A setting's value, shortened, for an error message (never used for the key)."""
    return repr(value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "...")


def _check_http_url(value: str, name: str, what: str) -> tuple[str, str, str]:
    """Split an http(s) URL into (scheme, netloc, path) or raise a ConfigError naming `name`."""
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        # A value with '@' may carry credentials: do not echo it.
        shown = "a value that is not one" if "@" in value else _shown(value)
        raise ConfigError(
            f"{name} must be an http:// or https:// URL of {what}, such as {_EXAMPLE_URLS}; "
            f"got {shown}"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"{name} must not contain credentials (user:password@); "
            f"put the API key in {ENV_API_KEY} instead"
        )
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ConfigError(
            f"{name} must not contain a query string or fragment; got {_shown(value)}"
        )
    return parts.scheme, parts.netloc, parts.path.rstrip("/")


def validate_base_url(value: str, *, name: str = "base_url") -> str:
    """A base URL such as `https://api.runpod.ai/v2`, without a trailing slash."""
    scheme, netloc, path = _check_http_url(value.strip(), name, "the API base")
    return urlunsplit((scheme, netloc, path, "", ""))


def validate_endpoint_id(value: str, *, name: str = "endpoint_id") -> str:
    """An endpoint id: one URL path segment such as `abc123`."""
    endpoint_id = value.strip()
    if not _ENDPOINT_ID_PATTERN.fullmatch(endpoint_id):
        raise ConfigError(
            f"{name} must be an endpoint id such as 'abc123' (letters, digits, '-', '_', '.', "
            f"'~'; the id shown on the endpoint's page in the Runpod console), got {_shown(value)}"
        )
    return endpoint_id


def validate_endpoint_url(value: str, *, name: str = "endpoint_url") -> str:
    """An endpoint URL `{base}/{endpoint_id}`, without a trailing slash or an operation."""
    scheme, netloc, path = _check_http_url(value.strip(), name, "an endpoint")
    segments = [segment for segment in path.split("/") if segment]
    if not segments:
        raise ConfigError(
            f"{name} has no endpoint id: it must end with /{{endpoint_id}}, such as "
            f"{_EXAMPLE_URLS}; got {_shown(value)}"
        )
    for index, segment in enumerate(segments):
        if segment in _OPERATION_SEGMENTS and index > 0:
            endpoint = urlunsplit((scheme, netloc, "/" + "/".join(segments[:index]), "", ""))
            raise ConfigError(
                f"{name} looks like the URL of the operation {segment!r}; give the endpoint URL "
                f"without the operation, i.e. {_shown(endpoint)}"
            )
    if segments[-1] == "v2":
        raise ConfigError(
            f"{name} looks like a base URL (it ends with /v2); append the endpoint id, "
            f"such as {_EXAMPLE_URLS}, or set {ENV_BASE_URL} and {ENV_ENDPOINT_ID} instead"
        )
    validate_endpoint_id(segments[-1], name=f"the last path segment of {name}")
    return urlunsplit((scheme, netloc, "/" + "/".join(segments), "", ""))


def validate_api_key(value: str, *, name: str = "api_key") -> str:
    """An API key: stripped, non-empty, a single token. Errors never echo it."""
    key = value.strip()
    if not key:
        raise ConfigError(f"{name} is empty; set it to your Runpod API key")
    if key.lower().startswith("bearer "):
        raise ConfigError(
            f"{name} starts with 'Bearer '; give the bare key (the client adds the scheme)"
        )
    if any(char.isspace() or not char.isprintable() for char in key):
        raise ConfigError(
            f"{name} contains whitespace or control characters; copy the key again "
            f"(Runpod console > Settings > API Keys)"
        )
    return key


def endpoint_url_for(endpoint_id: str, base_url: str = DEFAULT_BASE_URL) -> str:
    """The endpoint URL `{base}/{endpoint_id}`."""
    return f"{validate_base_url(base_url)}/{validate_endpoint_id(endpoint_id)}"


def _setting(explicit: str | None, env: Mapping[str, str], variable: str) -> str | None:
    """The explicit value if given, else the variable's; empty strings count as unset."""
    for value in (explicit, env.get(variable)):
        if value is not None and value.strip():
            return value
    return None


def resolve_target(
    *,
    endpoint_url: str | None = None,
    endpoint_id: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    env: Mapping[str, str] | None = None,
    require_api_key: bool = True,
    option_names: Mapping[str, str] | None = None,
) -> Target:
    """Resolve the endpoint and key from explicit values, then the environment.

    Precedence: `endpoint_url` > `endpoint_id` > `RUNPOD_ENDPOINT_URL` > `ENDPOINT_ID`; the base
    URL for an id is `base_url` > `RUNPOD_ENDPOINT_BASE_URL` > `https://api.runpod.ai/v2`; the key
    is `api_key` > `RUNPOD_API_KEY`. `option_names` maps the keyword names above to what the user
    typed (e.g. `{"endpoint_url": "--endpoint-url"}`) so that errors name it.
    """
    env = os.environ if env is None else env
    names = {keyword: keyword for keyword in ("endpoint_url", "endpoint_id", "base_url", "api_key")}
    names.update(option_names or {})

    def origin(explicit: str | None, keyword: str, variable: str) -> str:
        return names[keyword] if explicit is not None and explicit.strip() else variable

    base_source = origin(base_url, "base_url", ENV_BASE_URL)
    base = _setting(base_url, env, ENV_BASE_URL)
    base = DEFAULT_BASE_URL if base is None else validate_base_url(base, name=base_source)

    if endpoint_url is not None and endpoint_url.strip():
        source = names["endpoint_url"]
        url = validate_endpoint_url(endpoint_url, name=source)
    elif endpoint_id is not None and endpoint_id.strip():
        source = names["endpoint_id"]
        url = f"{base}/{validate_endpoint_id(endpoint_id, name=source)}"
    elif _setting(None, env, ENV_ENDPOINT_URL) is not None:
        url = validate_endpoint_url(env[ENV_ENDPOINT_URL], name=ENV_ENDPOINT_URL)
        source = ENV_ENDPOINT_URL
    elif _setting(None, env, ENV_ENDPOINT_ID) is not None:
        url = f"{base}/{validate_endpoint_id(env[ENV_ENDPOINT_ID], name=ENV_ENDPOINT_ID)}"
        source = ENV_ENDPOINT_ID
    else:
        raise ConfigError(
            f"no endpoint given: set {ENV_ENDPOINT_URL} to the endpoint URL ({_EXAMPLE_URLS}), "
            f"or {ENV_ENDPOINT_ID} to an endpoint id on {base} "
            f"(or pass {names['endpoint_url']} / {names['endpoint_id']})"
        )

    key_source = origin(api_key, "api_key", ENV_API_KEY)
    key = _setting(api_key, env, ENV_API_KEY)
    if key is not None:
        key = validate_api_key(key, name=key_source)
    elif require_api_key:
        raise ConfigError(
            f"no API key: set {ENV_API_KEY} to your Runpod API key (Runpod console > Settings > "
            f"API Keys), e.g. `export {ENV_API_KEY}=...`; the key is never printed"
        )
    return Target(endpoint_url=url, api_key=key, source=source)
