"""argparse types shared by the commands (cli.py and check_command.py)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

__all__ = ["bounded"]

T = TypeVar("T", int, float)


def bounded(kind: Callable[[str], T], low: T, high: T | None = None) -> Callable[[str], T]:
    """An argparse type: a number of `kind` from `low` to `high`."""

    expected = "an integer" if kind is int else "a number"

    def parse(raw: str) -> T:
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {raw!r}") from None
        if not math.isfinite(value):  # float("nan") compares false with every bound
            raise argparse.ArgumentTypeError(f"expected a finite number, got {raw!r}")
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"must be {span}, got {raw}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse
