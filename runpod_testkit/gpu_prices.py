"""Named GPU prices (--gpu NAME[:flex|:active]) from a small table shipped in the package.

The table (gpu_prices.toml beside this module) holds Runpod Serverless per-second prices, flex
and active, as the public pricing page listed them on the date it records. `--gpu-prices FILE`
(TOML or JSON, the same layout: `source`, `read`, and `gpus.NAME.flex` / `.active` /
`.listed_as`) adds GPUs or replaces the shipped ones. Names match ignoring case, spaces,
hyphens and underscores ("a100 80gb" is A100-80GB).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["TIERS", "GpuPrice", "GpuPriceError", "load_price_table", "resolve_gpu"]

TIERS = ("flex", "active")


class GpuPriceError(ValueError):
    """An unknown GPU, a bad tier, or a price file that cannot be used (one line)."""


@dataclass(frozen=True)
class GpuPrice:
    name: str
    tier: str
    price_per_s: float
    source: str
    read: str | None
    listed_as: str | None = None

    def describe(self) -> str:
        """Where the price comes from, for the cost line and JSON."""
        read = f", read {self.read}" if self.read else ""
        return f"{self.name} {self.tier} ${self.price_per_s:g}/s ({self.source}{read})"

    def to_json(self) -> dict[str, Any]:
        return {
            "gpu": self.name,
            "tier": self.tier,
            "pricePerS": self.price_per_s,
            "source": self.source,
            "read": self.read,
        }


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _entries(document: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    gpus = document.get("gpus")
    if not isinstance(gpus, Mapping) or not gpus:
        raise GpuPriceError(f"{where}: expected a 'gpus' table of NAME = {{flex, active}}")
    source = str(document.get("source", where))
    read = document.get("read")
    table: dict[str, dict[str, Any]] = {}
    for name, entry in gpus.items():
        if not isinstance(entry, Mapping):
            raise GpuPriceError(f"{where}: gpus.{name}: expected a table with flex and active")
        prices = {tier: entry.get(tier) for tier in TIERS}
        for tier, price in prices.items():
            if price is not None and (
                isinstance(price, bool) or not isinstance(price, int | float) or price < 0
            ):
                raise GpuPriceError(f"{where}: gpus.{name}.{tier}: expected dollars >= 0")
        if all(price is None for price in prices.values()):
            raise GpuPriceError(f"{where}: gpus.{name}: no flex or active price")
        table[str(name)] = {
            **prices,
            "source": str(entry.get("source", source)),
            "read": None if entry.get("read", read) is None else str(entry.get("read", read)),
            "listed_as": entry.get("listed_as"),
        }
    return table


def _read_file(path: str) -> Mapping[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise GpuPriceError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        document = json.loads(text) if path.endswith(".json") else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.endswith(".json") else "TOML"
        raise GpuPriceError(f"{path}: not valid {kind} ({exc})") from None
    if not isinstance(document, Mapping):
        raise GpuPriceError(f"{path}: expected an object with a 'gpus' table")
    return document


def load_price_table(override: str | None = None) -> dict[str, dict[str, Any]]:
    """The shipped table, with `override`'s entries (a TOML or .json file) added over it."""
    shipped = resources.files("runpod_testkit").joinpath("gpu_prices.toml").read_text("utf-8")
    table = _entries(tomllib.loads(shipped), "the shipped price table")
    if override is not None:
        by_key = {_key(name): name for name in table}
        for name, entry in _entries(_read_file(override), override).items():
            table.pop(by_key.get(_key(name), name), None)
            table[name] = entry
    return table


def resolve_gpu(spec: str, table: Mapping[str, Mapping[str, Any]]) -> GpuPrice:
    """NAME, NAME:flex or NAME:active; GpuPriceError names the known GPUs."""
    name, _, tier = spec.strip().partition(":")
    tier = tier.strip().lower() or "flex"
    if tier not in TIERS:
        raise GpuPriceError(f"unknown tier {tier!r} in {spec!r}; expected flex or active")
    wanted = _key(name)
    found = next((known for known in table if _key(known) == wanted), None)
    if found is None:
        raise GpuPriceError(f"unknown GPU {name.strip()!r}; known: {', '.join(sorted(table))}")
    entry = table[found]
    price = entry[tier]
    if price is None:
        raise GpuPriceError(f"{found} has no {tier} price in the table")
    return GpuPrice(
        name=found,
        tier=tier,
        price_per_s=float(price),
        source=entry["source"],
        read=entry["read"],
        listed_as=entry.get("listed_as"),
    )
