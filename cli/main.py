"""The ``unframe`` command. It only parses arguments and calls the library.

Exit codes: 0 ok, 1 validation mismatch, 2 bad usage or bad input, 3 unsupported op or feature,
4 a framework not installed. No traceback is printed unless ``--debug``.
"""

from __future__ import annotations

import traceback
import warnings
from typing import Any, TextIO

import click

from unframe.shared_ir.errors import ExitCode, UnframeError, UnsupportedOpsError

FRAMEWORK_HELP = (
    "one of onnx, pytorch, caffe2, tensorflow, coreml (detected from the path if left out)"
)


class UnframeGroup(click.Group):
    """Turns every error into one message and its documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except UnframeError as error:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            _report_error(error)
            ctx.exit(int(error.exit_code))
        except KeyboardInterrupt:
            click.echo("unframe: interrupted", err=True)
            ctx.exit(130)
        except Exception as error:  # noqa: BLE001 - a bug still gets one line, not a traceback
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            text = str(error).strip().splitlines()[0] if str(error).strip() else ""
            click.echo(
                f"unframe: internal error: {type(error).__name__}: {text} "
                "(rerun with --debug for the traceback, and please report it)",
                err=True,
            )
            ctx.exit(int(ExitCode.BAD_INPUT))


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    # Warnings a user should see (an exporter fallback) as one line, without source locations.
    click.echo(f"unframe: warning: {message}", err=True)


def _report_error(error: UnframeError) -> None:
    click.echo(f"unframe: error: {error}", err=True)
    if isinstance(error, UnsupportedOpsError):
        for line in error.details():
            click.echo(line, err=True)


@click.group(cls=UnframeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Print tracebacks for errors.")
@click.version_option(package_name="unframe")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Convert trained models between frameworks through one shared ONNX IR.

    Exit codes: 0 ok, 1 validation mismatch, 2 bad usage or input, 3 unsupported op or feature,
    4 framework not installed.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if not debug:
        warnings.showwarning = _show_warning


def main() -> None:
    cli(prog_name="unframe")


# The commands register themselves on ``cli``; imported last because they import ``cli`` from here.
from unframe.cli import commands  # noqa: E402,F401
