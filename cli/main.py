"""The ``unframe`` command. It only parses arguments and calls the library.

Exit codes: 0 ok, 1 validation mismatch, 2 bad usage or bad input, 3 unsupported op or feature,
4 a framework not installed, 5 a bug inside unframe (an internal error, not the model's fault),
6 the machine ran out of memory or disk. No traceback is printed unless ``--debug``.
"""

from __future__ import annotations

from unframe.cli import commands, matrix_command  # noqa: F401 - register the commands
from unframe.cli.group import FRAMEWORK_HELP, cli

__all__ = ["FRAMEWORK_HELP", "cli", "main"]


def main() -> None:
    cli(prog_name="unframe")
