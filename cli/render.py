"""Terminal output of the CLI: tables on stdout, messages and progress on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from unframe.shared_ir.compare import OutputComparison

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


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
    table = Table(title=title, title_justify="left")
    for column in ("output", "shape", "max abs err", "max rel err", "mismatched", "result"):
        table.add_column(
            column, justify="right" if "err" in column or column == "mismatched" else "left"
        )
    for o in outputs:
        result = "[green]pass[/green]" if o.ok else "[red]FAIL[/red]"
        if o.note:
            result += f" ({o.note})"
        table.add_row(
            o.name,
            str(o.shape),
            _number(o.max_abs),
            _number(o.max_rel),
            f"{o.mismatched}/{o.total}",
            result,
        )
    return table
