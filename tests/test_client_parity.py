"""The sync and async clients expose the same public methods with the same parameters."""

from __future__ import annotations

import inspect

from runpod_testkit.client import AsyncRunpodClient, RunpodClient

# Protocol methods that differ by design between a sync and an async context manager.
_CONTEXT_PROTOCOL = {"__enter__", "__exit__", "__aenter__", "__aexit__"}


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, callable)
        if not name.startswith("_") and name not in _CONTEXT_PROTOCOL
    }


def _parameters(signature: inspect.Signature) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def test_sync_and_async_clients_have_the_same_public_methods() -> None:
    sync_methods = _public_methods(RunpodClient)
    async_methods = _public_methods(AsyncRunpodClient)
    # "close" is "aclose" on the async side, as httpx names them.
    async_methods["close"] = async_methods.pop("aclose")
    assert sorted(sync_methods) == sorted(async_methods)
    mismatched = {
        name: (str(sync_methods[name]), str(async_methods[name]))
        for name in sync_methods
        if _parameters(sync_methods[name]) != _parameters(async_methods[name])
    }
    assert mismatched == {}


def test_async_client_awaits_every_method_that_does_io() -> None:
    # Constructors, redaction and the drain factory do no I/O; everything else is awaited.
    io_free = {"from_env", "from_target", "redact", "stream_until_drained"}
    async_methods = _public_methods(AsyncRunpodClient)
    awaited = {
        name
        for name in async_methods
        if inspect.iscoroutinefunction(getattr(AsyncRunpodClient, name))
    }
    assert awaited == set(async_methods) - io_free
    assert not any(
        inspect.iscoroutinefunction(getattr(RunpodClient, name))
        for name in _public_methods(RunpodClient)
    )
