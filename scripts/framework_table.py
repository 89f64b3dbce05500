"""Regenerates the README's framework tables.

Usage:
  python scripts/framework_table.py [--write]
      the per-framework table (formats, runtime, conformance pass rates from docs/conformance/)
  python scripts/framework_table.py --matrix [--models DIR] [--report DIR] [--from-json FILE] [--write]
      the framework x framework table, measured: `unframe matrix` over the small models
      scripts/matrix_models.py builds (or a matrix.json an earlier run wrote)

Without --write the table is printed; with it, README.md is updated between its markers.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unframe.converters.matrix import ordered
from unframe.converters.registry import KNOWN_FRAMEWORKS, all_frameworks, framework_names

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- framework-table:start -->", "<!-- framework-table:end -->"
MATRIX_START, MATRIX_END = "<!-- matrix-table:start -->", "<!-- matrix-table:end -->"
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped$", re.MULTILINE)


def conformance_rate(name: str) -> str:
    report = ROOT / "docs" / "conformance" / f"{name}.md"
    if not report.exists():
        return "not run"
    match = SUMMARY.search(report.read_text())
    if not match:
        return "not run"
    passed, failed, skipped = (int(g) for g in match.groups())
    total = passed + failed + skipped
    return f"{100.0 * passed / total:.1f}% ({passed}/{total})" if total else "not run"


def table() -> str:
    """One row per framework: formats, whether it runs here, its conformance pass rate."""
    adapters = {fw.name: fw for fw in all_frameworks()}
    names = list(dict.fromkeys([*framework_names(), *KNOWN_FRAMEWORKS]))
    lines = [
        "| framework | reads | writes | runs here | onnx node tests passing (export + run) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in names:
        fw = adapters.get(name)
        if fw is None:
            lines.append(f"| {name} | planned | planned | - | - |")
            continue
        note = fw.runtime_unavailable()
        runs = "yes" if note is None else f"no ({note})"
        lines.append(
            f"| {name} | {' '.join(fw.reads) or '-'} | {' '.join(fw.writes) or '-'} | {runs} | "
            f"{conformance_rate(name)} |"
        )
    return "\n".join(lines)


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.1g}"


def _first_line(text: str, limit: int = 160) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def matrix_table(payload: Mapping[str, Any], made_by: Mapping[str, str] | None = None) -> str:
    """The framework x framework table of a matrix run (``unframe matrix --json``'s payload).

    A cell: sources of the row's framework that pass into the column's / all of them, their
    largest absolute error and their seconds; failures are listed below the table with their
    error or located layer; ``made_by`` notes sources their framework's own tools did not make.
    """
    cells: Sequence[Mapping[str, Any]] = payload["cells"]
    sources = ordered(c["from"] for c in cells)
    targets = ordered(c["to"] for c in cells)
    adapters = {fw.name: fw for fw in all_frameworks()}
    not_run = [t for t in targets if t in adapters and adapters[t].runtime_unavailable()]
    heading = [f"{t} (re-imported, not run)" if t in not_run else t for t in targets]
    lines = [
        "| from \\ to | " + " | ".join(heading) + " |",
        "| --- |" + " --- |" * len(targets),
    ]
    for source in sources:
        row = []
        for target in targets:
            group = [c for c in cells if c["from"] == source and c["to"] == target]
            if not group:
                row.append("-")
                continue
            passed = sum(bool(c["ok"]) for c in group)
            errors = [c["max_abs"] for c in group if c["max_abs"] is not None]
            mark = "✅" if passed == len(group) else "❌" if passed == 0 else "⚠️"
            seconds = sum(float(c["seconds"]) for c in group)
            row.append(
                f"{mark} {passed}/{len(group)}, max err "
                f"{_figure(max(errors) if errors else None)}, {seconds:.0f} s"
            )
        count = len({c["src"] for c in cells if c["from"] == source})
        lines.append(
            f"| **{source}** ({count} model{'s' * (count != 1)}) | " + " | ".join(row) + " |"
        )
    failures = [c for c in cells if not c["ok"]]
    if failures:
        lines += ["", "Failing cells:", ""]
        for cell in failures:
            located = cell.get("locate") or {}
            where = ""
            if located.get("found"):
                where = f" (first diverging layer: {located['node']}, {located['op']})"
            reason = _first_line(cell.get("error") or "outputs differ")
            lines.append(f"- {Path(cell['src']).name} → {cell['to']}: {reason}{where}")
    notes = [
        f"{name}: {note}"
        for name, note in sorted((made_by or {}).items())
        if any(Path(c["src"]).name == name for c in cells)
    ]
    for target in not_run:
        notes.append(
            f"{target}: {adapters[target].runtime_unavailable()}; the written model is imported "
            "back into the IR and run on onnxruntime"
        )
    if notes:
        lines += ["", "Notes:", "", *[f"- {note}" for note in notes]]
    return "\n".join(lines)


def run_matrix(models: Path, report: Path | None) -> tuple[dict[str, Any], dict[str, str]]:
    """Builds the small models into ``models`` and runs the matrix over them."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import matrix_models  # scripts/, beside this file

    from unframe.cli.batch_view import BatchProgress
    from unframe.converters.matrix import matrix, target_frameworks
    from unframe.converters.report_html import matrix_page, write_page

    sources = matrix_models.build(models, log=lambda line: print(line, file=sys.stderr))
    made_by = {
        p.name: matrix_models.MADE_BY_UNFRAME for p in sources if p.name.startswith("caffe2_")
    }
    progress = BatchProgress(len(sources) * len(target_frameworks()), quiet=False)
    with progress:
        result = matrix([str(p) for p in sources], timeout=600, on_progress=progress)
    payload = result.as_json()
    for cell in payload["cells"]:  # the table names models, not this machine's temporary paths
        cell["src"] = Path(cell["src"]).name
    if report is not None:
        write_page(
            json.dumps({**payload, "made_by": made_by}, indent=2) + "\n", report, "matrix.json"
        )
        write_page(matrix_page(result), report, "matrix.html")
    return payload, made_by


def write_readme(text: str, start: str, end: str) -> None:
    readme = ROOT / "README.md"
    content = readme.read_text()
    if start not in content or end not in content:
        raise SystemExit(f"README.md lacks the {start} / {end} markers")
    before, rest = content.split(start, 1)
    _, after = rest.split(end, 1)
    readme.write_text(f"{before}{start}\n{text}\n{end}{after}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    parser.add_argument(
        "--matrix", action="store_true", help="the measured framework x framework table"
    )
    parser.add_argument(
        "--models", type=Path, help="--matrix: where to build the models [a temporary folder]"
    )
    parser.add_argument(
        "--report", type=Path, help="--matrix: also write matrix.json and matrix.html here"
    )
    parser.add_argument(
        "--from-json", type=Path, help="--matrix: the table of this matrix.json, run nothing"
    )
    args = parser.parse_args()
    if not args.matrix:
        text, markers = table(), (START, END)
    else:
        markers = (MATRIX_START, MATRIX_END)
        if args.from_json is not None:
            payload = json.loads(args.from_json.read_text())
            made_by = payload.get("made_by", {})
        elif args.models is not None:
            payload, made_by = run_matrix(args.models, args.report)
        else:
            with tempfile.TemporaryDirectory(prefix="unframe-matrix-models-") as folder:
                payload, made_by = run_matrix(Path(folder), args.report)
        text = matrix_table(payload, made_by)
    if not args.write:
        print(text)
        return
    write_readme(text, *markers)


if __name__ == "__main__":
    main()
