"""``unframe matrix``: every source into every installed framework, as a table, JSON and a page."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape
from rich.table import Table

from unframe.cli import render
from unframe.cli.group import FRAMEWORK_HELP, cli
from unframe.cli.options import jobs_option, json_option, timeout_option
from unframe.shared_ir.errors import ExitCode

if TYPE_CHECKING:
    from unframe.converters.matrix import MatrixResult

#: The report folder's files.
JSON_NAME, HTML_NAME = "matrix.json", "matrix.html"


def _frameworks(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [name.strip().lower() for name in text.split(",") if name.strip()]


def _table(result: MatrixResult) -> Table:
    from unframe.converters.report_html import locate_text

    table = Table(title="unframe matrix", title_justify="left")
    for column in ("src", "from", "to", "result", "max abs err", "s", "error / first diverging"):
        table.add_column(
            column,
            justify="right" if column in ("max abs err", "s") else "left",
            no_wrap=column != "error / first diverging",
        )
    for cell in result.cells:
        verdict = "[green]pass[/green]" if cell.ok else "[red]FAIL[/red]"
        if not cell.ran_natively:
            verdict += " (re-imported, not run)"
        detail = cell.error or ""
        located = locate_text(cell.locate)
        if located:
            detail = f"{detail}; at {located}" if detail else f"at {located}"
        table.add_row(
            escape(Path(cell.src).name),  # the JSON has the path
            cell.source,
            cell.target,
            verdict,
            "-" if cell.max_abs is None else f"{cell.max_abs:.3g}",
            f"{cell.seconds:.1f}",
            escape(detail),
        )
    return table


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--frameworks",
    "framework_list",
    metavar="A,B,...",
    help="Convert into these frameworks only [default: every installed one].",
)
@click.option("--from", "source", help=f"The sources' framework: {FRAMEWORK_HELP}.")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME=D1,D2,...[:DTYPE]",
    help="An input's shape (and dtype), for every source; repeat for several inputs.",
)
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    help=f"Also write DIR/{JSON_NAME} (as --json prints) and DIR/{HTML_NAME}, the heat map.",
)
@jobs_option("cell")
@timeout_option("cell")
@click.option("--rtol", type=float, help="Relative tolerance of validation.")
@click.option("--atol", type=float, help="Absolute tolerance of validation.")
@json_option
def matrix(
    sources: tuple[str, ...],
    framework_list: str | None,
    source: str | None,
    inputs: tuple[str, ...],
    report: Path | None,
    workers: int | None,
    timeout: float | None,
    rtol: float | None,
    atol: float | None,
    as_json: bool,
) -> None:
    """Convert each SOURCE into every installed framework, validate each and locate failures.

    Every cell converts, validates against the source on seeded random inputs (on the target's
    runtime where it runs here, else imported back and run on onnxruntime), imports the written
    model back into the IR and, where outputs differ, names the first diverging layer. A target
    that cannot write the model (an op it lacks) is a failing cell with its message.

    Exit 0 when every cell passes, 1 when any cell fails (whatever the cause: a mismatch, an
    unsupported op, a crash; each cell's error says which, with its own exit code); 2 for bad
    sources or options and 4 for a named framework that is not installed, before any cell runs.
    """
    from unframe.cli.batch_view import BatchProgress
    from unframe.converters.matrix import matrix as run_matrix
    from unframe.converters.matrix import target_frameworks
    from unframe.converters.report_html import matrix_page, write_page

    if report is not None:
        from unframe.converters.report_html import check_report_folder

        check_report_folder(report)
    targets = target_frameworks(_frameworks(framework_list))
    progress = BatchProgress(len(sources) * len(targets), quiet=as_json)
    try:
        with progress:
            result = run_matrix(
                sources,
                frameworks=targets,
                source_framework=source,
                inputs=inputs,
                jobs=workers,
                timeout=timeout,
                rtol=rtol,
                atol=atol,
                on_progress=progress,
            )
    except KeyboardInterrupt:
        click.echo("unframe: interrupted; the workers were stopped", err=True)
        sys.exit(130)
    payload = result.as_json()
    if report is not None:
        import json

        write_page(json.dumps(payload, indent=2) + "\n", report, JSON_NAME)
        write_page(matrix_page(result), report, HTML_NAME)
    if as_json:
        render.print_json(payload)
    else:
        render.stdout.print(_table(result))
        failed = sum(not c.ok for c in result.cells)
        render.stdout.print(
            f"{len(result.cells)} cell(s): {len(result.cells) - failed} pass, {failed} fail"
        )
        if report is not None:
            render.stdout.print(f"report: {report / HTML_NAME}")
    if not result.ok:
        sys.exit(int(ExitCode.MISMATCH))
