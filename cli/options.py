"""Click options that more than one command takes, worded and checked once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

Decorator = Callable[[Any], Any]


def jobs_option(unit: str) -> Decorator:
    """``-j/--jobs`` (into ``workers``): how many ``unit`` s run at once, each in a worker process."""
    return click.option(
        "-j",
        "--jobs",
        "workers",
        type=click.IntRange(min=1),
        help=f"{unit.capitalize()}s run at once, each in its own worker process "
        "[default: one per CPU].",
    )


def timeout_option(unit: str, failure: str = "fails") -> Decorator:
    """``--timeout``: seconds one ``unit`` may run before its worker is killed."""
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        help=f"Seconds one {unit} may run; past it its worker is killed and the {unit} {failure}.",
    )


json_option: Decorator = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON."
)
