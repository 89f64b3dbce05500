"""Terminal output of the CLI: tables on stdout, messages and progress on stderr."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from rich.console import Console

    from unframe.shared_ir.compare import OutputComparison

    stdout: Console
    stderr: Console

_consoles: dict[str, Console] = {}


def __getattr__(name: str) -> Console:
    # rich.console costs a third of ``unframe --help``'s start-up: made on first use.
    if name not in ("stdout", "stderr"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _consoles:
        from rich.console import Console

        _consoles[name] = Console(stderr=name == "stderr", highlight=False, soft_wrap=True)
    return _consoles[name]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    return str(value)


def _number(value: float) -> str:
    if value == float("inf"):
        return "inf"
    return f"{value:.3g}"


def comparison_table(title: str, outputs: list[OutputComparison]) -> Table:
    """One row per output: errors against atol/rtol and against the output's own scale.

    A dtype that differs from the reference's is named in the result's note (JSON has both).
    """
    table = Table(title=title, title_justify="left")
    columns = ("output", "shape", "max abs err", "max rel err", "err/std", "mismatched")
    for column in (*columns, "result"):
        numeric = "err" in column or column == "mismatched"
        # Figures and shapes never wrap mid-value; names and notes may.
        table.add_column(
            column, justify="right" if numeric else "left", no_wrap=numeric or column == "shape"
        )
    for o in outputs:
        result = "[green]pass[/green]" if o.ok else "[red]FAIL[/red]"
        details = [o.note] if o.note else []
        details += [f"[yellow]{flag}[/yellow]" for flag in o.flags]
        if details:
            result += f" ({'; '.join(details)})"
        table.add_row(
            o.name,
            str(o.shape),
            _number(o.max_abs),
            _number(o.max_rel),
            "-" if o.rel_to_scale is None else _number(o.rel_to_scale),
            f"{o.mismatched}/{o.total}",
            result,
        )
    return table


def print_findings(problems: list[str], warnings: list[str]) -> None:
    """What fails the comparison as a whole (red) and what weakens a pass (yellow), after the table."""
    for problem in problems:
        __getattr__("stdout").print(f"[red]problem:[/red] {problem}")
    for warning in warnings:
        __getattr__("stdout").print(f"[yellow]warning:[/yellow] {warning}")
