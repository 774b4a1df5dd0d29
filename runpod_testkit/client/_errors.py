"""Errors the clients raise before any answer (the errors that carry one live beside
`ApiResponse`), and the API key kept out of their messages."""

from __future__ import annotations

_REDACTED = "***"
# Shorter "keys" (test placeholders such as "k") are not redacted: replacing every "k" in a
# message would mangle it and protect nothing.
_MIN_REDACTED_KEY_CHARS = 6


class _Secret:
    """The API key, kept out of reprs; `redact` removes it from any text."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value

    @property
    def value(self) -> str | None:
        return self._value

    def redact(self, text: str) -> str:
        if self._value and len(self._value) >= _MIN_REDACTED_KEY_CHARS:
            return text.replace(self._value, _REDACTED)
        return text

    def __repr__(self) -> str:
        return "None" if self._value is None else repr(_REDACTED)


def _no_redaction(text: str) -> str:
    return text


class RunpodClientError(Exception):
    """Base class of the errors this module raises."""


class RequestTimeout(RunpodClientError, TimeoutError):
    """No response within the call's timeout (httpx.TimeoutException underneath)."""

    def __init__(self, message: str, *, operation: str, url: str, timeout_s: float) -> None:
        super().__init__(message)
        self.operation = operation
        self.url = url
        self.timeout_s = timeout_s


class TransportError(RunpodClientError):
    """The request could not be sent or its response not read (connection refused, reset...)."""

    def __init__(self, message: str, *, operation: str, url: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.url = url
