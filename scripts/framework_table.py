"""Regenerates the README's framework x framework table from the registry and conformance reports.

Usage: python scripts/framework_table.py [--write]   (prints the table; --write updates README.md)
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from unframe.converters.registry import KNOWN_FRAMEWORKS, all_frameworks, framework_names

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- framework-table:start -->", "<!-- framework-table:end -->"
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
    adapters = {fw.name: fw for fw in all_frameworks()}
    names = list(dict.fromkeys([*framework_names(), *KNOWN_FRAMEWORKS]))
    lines = [
        "| from \\ to | " + " | ".join(names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    for source in names:
        cells = []
        for target in names:
            if source in adapters and target in adapters:
                cells.append("yes")
            else:
                cells.append("planned")
        lines.append(f"| **{source}** | " + " | ".join(cells) + " |")
    lines += [
        "",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args()
    text = table()
    if not args.write:
        print(text)
        return
    readme = ROOT / "README.md"
    content = readme.read_text()
    if START not in content or END not in content:
        raise SystemExit(f"README.md lacks the {START} / {END} markers")
    before, rest = content.split(START, 1)
    _, after = rest.split(END, 1)
    readme.write_text(f"{before}{START}\n{text}\n{END}{after}")


if __name__ == "__main__":
    main()
