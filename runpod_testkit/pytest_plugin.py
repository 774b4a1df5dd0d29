"""pytest plugin (registered as an entry point): the `runpod_mock` fixture for users' own tests."""

from runpod_testkit.emulator.mock import runpod_mock

__all__ = ["runpod_mock"]
