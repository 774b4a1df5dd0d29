"""The package's Jinja2 templates (runpod_testkit/templates), read with importlib.resources
through Jinja2's PackageLoader, always with autoescaping."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

__all__ = ["asset", "macro", "templates"]


@cache
def templates() -> Environment:
    return Environment(
        loader=PackageLoader("runpod_testkit", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


@cache
def asset(name: str) -> str:
    """A static file next to the templates (the web UI's script and stylesheet)."""
    return resources.files("runpod_testkit").joinpath("templates").joinpath(name).read_text("utf-8")


def macro(template: str, name: str) -> Callable[..., Any]:
    """A macro of a template, to call from Python (it returns autoescaped Markup)."""
    found: Callable[..., Any] = getattr(templates().get_template(template).module, name)
    return found
