"""Number types shared by every command line and settings reader (cli.py, check_command.py,
loadtest/settings.py), so a bad number gets the same message wherever it is given."""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Callable
from typing import TypeVar

__all__ = ["bounded"]

T = TypeVar("T", int, float)


def bounded(kind: type[T], low: T, high: T | None = None) -> Callable[[object], T]:
    """An argparse type (and a settings parser): a finite number of `kind` from `low` to
    `high`, given as text or as a number already (a web form, a namespace); never a bool.
    Raises argparse.ArgumentTypeError, which argparse prefixes with the option's name."""

    expected = "an integer" if kind is int else "a number"

    def parse(raw: object) -> T:
        value: float = math.nan
        if isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
            with contextlib.suppress(ValueError):  # from the text: int refuses 2.5, not rounds
                value = kind(str(raw))
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {str(raw)[:40]!r}")
        if value < low or (high is not None and value > high):
            span = f"from {low:g} to {high:g}" if high is not None else f"{low:g} or more"
            raise argparse.ArgumentTypeError(f"must be {span}, got {value:g}")
        return kind(value)

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse
