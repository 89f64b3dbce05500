"""Self-contained HTML pages: the matrix's heat map and one conversion's report.

No script, font or stylesheet is fetched: CSS and plots (small inline SVG) are in the page, so it
opens the same from a CI artifact, a mail or a disk with no network. Every string from a model or a
path is escaped. The heat map's cells and the histograms' bars use fixed colours
(``PASS_COLOUR``...), which no other element of a page uses, so a screenshot can find them.
"""

from __future__ import annotations

import html
import math
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from unframe.shared_ir.errors import BadInputError

if TYPE_CHECKING:
    from unframe.converters.api import ConversionResult
    from unframe.converters.matrix import MatrixCell, MatrixResult

__all__ = [
    "BAR_COLOUR",
    "check_report_folder",
    "FAIL_COLOUR",
    "MIXED_COLOUR",
    "PASS_COLOUR",
    "CONVERSION_PAGE",
    "conversion_page",
    "locate_text",
    "matrix_page",
    "svg_histogram",
    "write_conversion_report",
    "write_page",
]

PASS_COLOUR = "#2e9d4f"
FAIL_COLOUR = "#d0312d"
#: A (source framework, target) pair where some sources pass and some fail.
MIXED_COLOUR = "#e3a21a"
BAR_COLOUR = "#3b6fd4"

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; background: #fff; }
h1 { font-size: 1.4em; margin: 0 0 0.3em; }
h2 { font-size: 1.15em; margin: 1.2em 0 0.4em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.mono, span.mono { font-family: ui-monospace, monospace; word-break: break-all; }
td.error { font-family: ui-monospace, monospace; white-space: pre-wrap; color: #8a1c1c; }
table.heat td.heat { width: 150px; height: 64px; color: #fff; text-align: center;
  vertical-align: middle; border: 2px solid #fff; }
table.heat th { text-align: center; }
.fail { color: #8a1c1c; font-weight: bold; }
.pass { color: #17692c; font-weight: bold; }
.sides { display: flex; gap: 24px; align-items: flex-start; }
.sides > div { flex: 1; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; }
.note { color: #555; }
"""


def _e(text: object) -> str:
    return html.escape("" if text is None else str(text))


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    if math.isnan(value):
        return "nan"
    return f"{value:.3g}"


def _page(title: str, body: str) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<h1>{_e(title)}</h1>\n<p class="note">written {_e(when)} by unframe</p>\n'
        f"{body}\n</body>\n</html>\n"
    )


def check_report_folder(folder: Path) -> None:
    """Refuses (exit 2) a report folder that cannot be one, before any work is done."""
    if folder.exists() and not folder.is_dir():
        raise BadInputError(
            "the report folder is not a folder", path=str(folder), hint="name a folder to write"
        )


def write_page(text: str, folder: Path, name: str) -> Path:
    """Writes ``folder/name`` atomically (creating the folder); a half-written page never shows."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{name}-", dir=folder)
    except OSError as error:
        raise BadInputError(
            f"cannot write the report: {error.strerror}", path=str(folder)
        ) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, folder / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return folder / name


# -- plots -------------------------------------------------------------------------------------


def svg_histogram(
    values: np.ndarray, *, title: str, bins: int = 24, width: int = 320, height: int = 160
) -> str:
    """A bar chart of ``values``' distribution over [min, max] as an inline ``<svg>`` element.

    Non-finite values are counted in the title, not plotted. Bar heights are linear in the count.
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    finite = flat[np.isfinite(flat)]
    margin_left, margin_bottom, margin_top = 8, 28, 22
    plot_w, plot_h = width - 2 * margin_left, height - margin_bottom - margin_top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{_e(title)}">',
        f'<text x="{margin_left}" y="15" font-size="12" fill="#222">{_e(title)}</text>',
        f'<line x1="{margin_left}" y1="{height - margin_bottom}" x2="{width - margin_left}" '
        f'y2="{height - margin_bottom}" stroke="#888" stroke-width="1"/>',
    ]
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        if high <= low:  # one bin holds every value
            counts = np.zeros(bins, dtype=np.int64)
            counts[0] = finite.size
        else:
            counts, _ = np.histogram(finite, bins=bins, range=(low, high))
        tallest = max(int(counts.max()), 1)
        bar_w = plot_w / bins
        for index, count in enumerate(counts):
            if not count:
                continue
            bar_h = max(1.0, plot_h * int(count) / tallest)
            x = margin_left + index * bar_w
            y = height - margin_bottom - bar_h
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" '
                f'height="{bar_h:.1f}" fill="{BAR_COLOUR}"><title>{int(count)}</title></rect>'
            )
        for x, label in ((margin_left, _number(low)), (width - margin_left, _number(high))):
            anchor = "start" if x == margin_left else "end"
            parts.append(
                f'<text x="{x}" y="{height - 10}" font-size="11" fill="#555" '
                f'text-anchor="{anchor}">{_e(label)}</text>'
            )
    dropped = flat.size - finite.size
    if dropped:
        parts.append(
            f'<text x="{width - margin_left}" y="15" font-size="11" fill="#8a1c1c" '
            f'text-anchor="end">{dropped} not finite</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# -- the matrix --------------------------------------------------------------------------------


def _heat_cell(cells: Sequence[MatrixCell]) -> str:
    if not cells:
        return '<td class="none">-</td>'
    passed = sum(cell.ok for cell in cells)
    colour = PASS_COLOUR if passed == len(cells) else FAIL_COLOUR if passed == 0 else MIXED_COLOUR
    errors = [c.max_abs for c in cells if c.max_abs is not None]
    seconds = sum(c.seconds for c in cells)
    lines = [f"{passed}/{len(cells)} pass", f"max err {_number(max(errors) if errors else None)}"]
    lines.append(f"{seconds:.1f} s")
    if not all(cell.ran_natively for cell in cells):
        lines.append("re-imported, not run")
    tip = "; ".join(f"{c.src}: {'pass' if c.ok else c.error or 'outputs differ'}" for c in cells)
    return (
        f'<td class="heat" style="background:{colour}" title="{_e(tip)}">'
        + "<br>".join(_e(line) for line in lines)
        + "</td>"
    )


def locate_text(located: Mapping[str, Any] | None) -> str:
    if not located:
        return ""
    if not located.get("found"):
        return f"not located: {located.get('note') or located.get('how') or ''}"
    text = f"{located.get('node')} ({located.get('op')}), max abs {_number(located.get('max_abs'))}"
    converted = located.get("converted_name")
    if converted and converted != located.get("output"):
        text += f"; {converted} in the converted model"
    return text


def matrix_page(result: MatrixResult, *, title: str = "unframe matrix") -> str:
    """The heat map (rows: source frameworks, columns: targets), then one row per cell."""
    sources = result.sources()
    header = "<tr><th>from \\ to</th>" + "".join(f"<th>{_e(t)}</th>" for t in result.targets)
    rows = []
    for source in sources:
        row = [f"<th>{_e(source)}</th>"]
        for target in result.targets:
            row.append(
                _heat_cell([c for c in result.cells if c.source == source and c.target == target])
            )
        rows.append("<tr>" + "".join(row) + "</tr>")
    not_run = sorted({c.target for c in result.cells if not c.ran_natively})
    notes = [
        "Each cell: the sources of that framework converted into the target, validated against "
        "the source on seeded random inputs and imported back into the IR; a failing cell names "
        "its first diverging layer below."
    ]
    for target in not_run:
        notes.append(
            f"{target}: re-imported, not run in {target} (its runtime cannot run here); the "
            "re-imported model is run on onnxruntime."
        )
    detail_rows = []
    for cell in result.cells:
        verdict = '<span class="pass">pass</span>' if cell.ok else '<span class="fail">FAIL</span>'
        detail_rows.append(
            "<tr>"
            f'<td class="mono">{_e(cell.src)}</td><td>{_e(cell.source)}</td>'
            f"<td>{_e(cell.target)}</td><td>{verdict}</td>"
            f'<td class="num">{_e(_number(cell.max_abs))}</td>'
            f'<td class="num">{cell.seconds:.2f}</td>'
            f'<td class="error">{_e(cell.error or "")}</td>'
            f'<td class="mono">{_e(locate_text(cell.locate))}</td>'
            "</tr>"
        )
    verdict = (
        "every cell passes"
        if result.ok
        else (f"{sum(not c.ok for c in result.cells)} of {len(result.cells)} cells fail")
    )
    body = (
        f'<p class="{"pass" if result.ok else "fail"}">{_e(verdict)}</p>\n'
        f'<table class="heat">\n{header}</tr>\n'
        + "\n".join(rows)
        + "\n</table>\n"
        + "".join(f'<p class="note">{_e(note)}</p>\n' for note in notes)
        + "<h2>Cells</h2>\n<table>\n<tr><th>src</th><th>from</th><th>to</th><th>result</th>"
        "<th>max abs err</th><th>seconds</th><th>error</th><th>first diverging layer</th></tr>\n"
        + "\n".join(detail_rows)
        + "\n</table>"
    )
    return _page(f"{title}: {verdict}", body)


# -- one conversion ----------------------------------------------------------------------------


def _summary_html(heading: str, summary: Mapping[str, Any] | None, note: str = "") -> str:
    if summary is None:
        return f'<div><h2>{_e(heading)}</h2><p class="note">{_e(note)}</p></div>'

    def values(items: Sequence[Mapping[str, Any]]) -> str:
        return "".join(
            f'<tr><td class="mono">{_e(v.get("name"))}</td><td>{_e(v.get("dtype"))}</td>'
            f'<td class="mono">{_e(v.get("shape"))}</td></tr>'
            for v in items
        )

    ops = "".join(
        f'<tr><td>{_e(op)}</td><td class="num">{count}</td></tr>'
        for op, count in summary.get("ops", {}).items()
    )
    return (
        f"<div><h2>{_e(heading)}</h2>"
        + (f'<p class="note">{_e(note)}</p>' if note else "")
        + f'<table><tr><th>nodes</th><td class="num">{summary.get("nodes")}</td></tr>'
        f'<tr><th>parameters</th><td class="num">{summary.get("parameters"):,}</td></tr>'
        f'<tr><th>parameter bytes</th><td class="num">{summary.get("parameter_bytes"):,}</td>'
        "</tr></table>"
        "<h3>inputs</h3><table><tr><th>name</th><th>dtype</th><th>shape</th></tr>"
        + values(summary.get("inputs", []))
        + "</table><h3>outputs</h3><table><tr><th>name</th><th>dtype</th><th>shape</th></tr>"
        + values(summary.get("outputs", []))
        + "</table><h3>op histogram</h3><table><tr><th>op</th><th>count</th></tr>"
        + ops
        + "</table></div>"
    )


def _error_plots(
    expected: Mapping[str, np.ndarray] | None, actual: Mapping[str, np.ndarray] | None
) -> str:
    if not expected or not actual:
        return '<p class="note">no outputs to plot</p>'
    plots = []
    for name, reference in expected.items():
        converted = actual.get(name)
        if converted is None or np.shape(converted) != np.shape(reference):
            plots.append(f'<p class="note">{_e(name)}: no matching output to compare</p>')
            continue
        try:
            difference = np.abs(
                np.asarray(converted, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
            )
        except (TypeError, ValueError):  # strings, objects: nothing to plot
            continue
        plots.append(svg_histogram(difference, title=f"|error| of {name}"))
    return '<div class="plots">' + "".join(plots) + "</div>"


def conversion_page(
    result: ConversionResult,
    *,
    target_summary: Mapping[str, Any] | None,
    target_note: str = "",
) -> str:
    """Source and target side by side, the validation table, error histograms, the located layer."""
    from unframe.shared_ir.stats import model_summary

    source_summary = model_summary(result.model) if result.model is not None else None
    validation = result.validation
    parts = [
        f"<p>{_e(result.input)} ({_e(result.source)}) &rarr; {_e(result.output)} "
        f"({_e(result.target)}) in {result.seconds:.2f} s</p>",
        "<h2>Validation</h2>",
    ]
    if validation is None:
        parts.append('<p class="note">not validated (pass --validate)</p>')
    else:
        verdict = "outputs match" if validation.ok else "outputs differ"
        parts.append(f'<p class="{"pass" if validation.ok else "fail"}">{_e(verdict)}</p>')
        parts.append(
            f'<p class="note">{_e(validation.how)} (rtol {validation.rtol:g}, '
            f"atol {validation.atol:g})</p>"
        )
        rows = "".join(
            f'<tr><td class="mono">{_e(o.name)}</td><td class="mono">{_e(o.shape)}</td>'
            f'<td class="num">{_e(_number(o.max_abs))}</td>'
            f'<td class="num">{_e(_number(o.max_rel))}</td>'
            f'<td class="num">{o.mismatched}/{o.total}</td>'
            f"<td>{'<span class=pass>pass</span>' if o.ok else '<span class=fail>FAIL</span>'}"
            f"{_e(' (' + o.note + ')' if o.note else '')}</td></tr>"
            for o in validation.outputs
        )
        parts.append(
            "<table><tr><th>output</th><th>shape</th><th>max abs err</th><th>max rel err</th>"
            f"<th>mismatched</th><th>result</th></tr>{rows}</table>"
        )
        for problem in validation.problems:
            parts.append(f'<p class="fail">problem: {_e(problem)}</p>')
        for warning in validation.warnings:
            parts.append(f'<p class="note">warning: {_e(warning)}</p>')
        parts.append("<h2>Error histograms</h2>")
        parts.append(_error_plots(validation.expected, validation.actual))
        if validation.locate is not None:
            parts.append("<h2>First diverging layer</h2>")
            parts.append(_locate_html(validation.locate.as_json()))
    parts += [
        "<h2>Graphs</h2>",
        '<div class="sides">',
        _summary_html(f"source: {result.source}", source_summary, "the IR after the passes"),
        _summary_html(f"target: {result.target}", target_summary, target_note),
        "</div>",
    ]
    verdict = "ok" if result.ok else "outputs differ"
    return _page(
        f"unframe convert: {result.source} -> {result.target}: {verdict}", "\n".join(parts)
    )


def _locate_html(located: Mapping[str, Any]) -> str:
    if not located.get("found"):
        return f'<p class="note">{_e(locate_text(located))}</p>'
    rows = "".join(
        f'<tr><td class="mono">{_e(i.get("name"))}</td><td>input ({_e(i.get("kind"))})</td>'
        f'<td class="num">{_e(_number(i.get("max_abs")) if i.get("compared") else "-")}</td>'
        f"<td>{'-' if not i.get('compared') else 'pass' if i.get('ok') else 'FAIL'}</td></tr>"
        for i in located.get("inputs", [])
    )
    rows += (
        f'<tr><td class="mono">{_e(located.get("output"))}</td><td>output</td>'
        f'<td class="num">{_e(_number(located.get("max_abs")))}</td>'
        '<td><span class="fail">FAIL</span></td></tr>'
    )
    return (
        f'<p class="fail">diverges at {_e(locate_text(located))}</p>'
        f'<p class="note">{_e(located.get("how"))}; {_e(located.get("note"))}</p>'
        "<table><tr><th>value</th><th>role</th><th>max abs err</th><th>result</th></tr>"
        f"{rows}</table>"
    )


#: ``convert --report DIR``'s page inside DIR.
CONVERSION_PAGE = "convert.html"


def write_conversion_report(result: ConversionResult, folder: Path) -> Path:
    """Writes ``folder/convert.html`` for ``result``, the written model imported back for its side.

    A written model the target's frontend cannot read back still gets a page, which says why.
    """
    from unframe.converters import api
    from unframe.shared_ir.errors import UnframeError
    from unframe.shared_ir.stats import model_summary

    target_summary: dict[str, Any] | None = None
    note = "the written model, imported back into the IR"
    try:
        target_summary = model_summary(api.load(result.output, result.target))
    except UnframeError as error:
        note = f"the written model cannot be imported back: {error}"
    page = conversion_page(result, target_summary=target_summary, target_note=note)
    return write_page(page, folder, CONVERSION_PAGE)
