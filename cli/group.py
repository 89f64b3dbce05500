"""The ``unframe`` command group: one error message and exit code per failure, ``--debug``.

The commands live in ``commands.py`` and register themselves on ``cli``; ``main.py`` puts the two
together, so neither module imports the other's importer (no import circle).

Exit codes: 0 ok, 1 validation mismatch, 2 bad usage or bad input, 3 unsupported op or feature,
4 a framework not installed, 5 a bug inside unframe (an internal error, not the model's fault),
6 the machine ran out of memory or disk. No traceback is printed unless ``--debug``.
"""

from __future__ import annotations

import logging
import traceback
import warnings
from typing import Any, TextIO

import click

from unframe.shared_ir.errors import (
    InternalError,
    UnframeError,
    UnsupportedOpsError,
    unexpected_error,
)

FRAMEWORK_HELP = (
    "onnx, pytorch, caffe2, tensorflow, tflite, coreml or one a plugin adds (`unframe frameworks` lists "
    "them); detected from the path if left out"
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
            classified = unexpected_error(error, f"unframe {ctx.invoked_subcommand or ''}".strip())
            _report_error(classified)
            ctx.exit(int(classified.exit_code))


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
    kind = "internal error" if isinstance(error, InternalError) else "error"
    click.echo(f"unframe: {kind}: {error}", err=True)
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
    4 framework not installed, 5 internal error (a bug in unframe), 6 out of memory or disk.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    # The library lets frameworks' own logs and tracebacks through only at DEBUG.
    logging.getLogger("unframe").setLevel(logging.DEBUG if debug else logging.NOTSET)
    # onnx_ir warns on stderr (through logging's last resort) about a broken graph it reads,
    # which the checks then refuse in one line; its lines only add noise around that line.
    logging.getLogger("onnx_ir").setLevel(logging.NOTSET if debug else logging.ERROR)
    if debug:  # a handler, or unframe's debug lines (why a pass was skipped...) go nowhere
        logging.basicConfig(format="unframe: debug: %(name)s: %(message)s")
    if not debug:
        warnings.showwarning = _show_warning
