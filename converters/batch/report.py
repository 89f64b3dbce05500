"""The HTML page of ``unframe batch --report DIR``: one self-contained file with the batch's table.

No script, font or stylesheet is fetched: the CSS is inline, so the page opens the same from a CI
artifact, a mail or a disk with no network. Every string from a job (paths, framework names,
error lines) is escaped, since model names come from users.
"""

from __future__ import annotations

import html
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unframe.converters.batch.jobs import JobResult

#: The page's file name inside the report folder (the JSON lies beside it).
HTML_NAME = "report.html"

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
.summary { margin: 0.5em 0 1.5em; }
.summary span { display: inline-block; margin-right: 1.5em; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.path { font-family: ui-monospace, monospace; word-break: break-all; }
td.error { font-family: ui-monospace, monospace; white-space: pre-wrap; color: #8a1c1c; }
tr.ok td.status { color: #17692c; font-weight: bold; }
tr.failed td.status { color: #b00020; font-weight: bold; }
tr.skipped td.status { color: #666; }
"""

_COLUMNS = (
    "#",
    "src",
    "from",
    "to",
    "out",
    "status",
    "seconds",
    "exit code",
    "error",
    "validation max error",
)


def status(result: JobResult) -> str:
    """ok, failed or skipped (resumed: the output was already there)."""
    if result.skipped:
        return "skipped"
    return "ok" if result.ok else "failed"


def validation_max_error(result: JobResult) -> float | None:
    """The largest absolute difference over the validated outputs; None when not validated."""
    outputs: list[dict[str, Any]] = (result.validation or {}).get("outputs") or []
    errors = [float(o["max_abs"]) for o in outputs if o.get("max_abs") is not None]
    return max(errors) if errors else None


def _cell(text: object, css: str = "") -> str:
    attribute = f' class="{css}"' if css else ""
    return f"<td{attribute}>{html.escape('' if text is None else str(text))}</td>"


def _row(number: int, result: JobResult) -> str:
    data = result.as_json()
    max_error = validation_max_error(result)
    cells = [
        _cell(number, "num"),
        _cell(data["src"], "path"),
        _cell(data["from"] or ""),
        _cell(data["to"]),
        _cell(data["out"], "path"),
        _cell(status(result), "status"),
        _cell(f"{result.seconds:.2f}", "num"),
        _cell(result.exit_code, "num"),
        _cell(result.error or "", "error"),
        _cell("" if max_error is None else f"{max_error:.3g}", "num"),
    ]
    return f'<tr class="{status(result)}">' + "".join(cells) + "</tr>"


def render_html(results: Sequence[JobResult], *, title: str = "unframe batch") -> str:
    """The page as a string: a summary (counts, total and slowest seconds) and one row per job."""
    counts = {name: 0 for name in ("ok", "failed", "skipped")}
    for result in results:
        counts[status(result)] += 1
    seconds = sum(r.seconds for r in results)
    slowest = max(results, key=lambda r: r.seconds, default=None)
    failed_codes = sorted({r.exit_code for r in results if status(r) == "failed"})
    verdict = "every job succeeded" if counts["failed"] == 0 else f"{counts['failed']} failed"
    summary = [
        f"{len(results)} jobs",
        f"{counts['ok']} ok",
        f"{counts['failed']} failed",
        f"{counts['skipped']} skipped",
        f"{seconds:.1f} s of conversion in all",
    ]
    if slowest is not None:
        summary.append(f"slowest {slowest.seconds:.1f} s ({slowest.job.src})")
    if failed_codes:
        summary.append("exit codes of failures: " + ", ".join(str(c) for c in failed_codes))
    header = "".join(f"<th>{html.escape(name)}</th>" for name in _COLUMNS)
    rows = "\n".join(_row(number, result) for number, result in enumerate(results, 1))
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}: {html.escape(verdict)}</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}: {html.escape(verdict)}</h1>\n"
        f"<p>written {html.escape(when)}</p>\n"
        '<div class="summary">'
        + "".join(f"<span>{html.escape(part)}</span>" for part in summary)
        + "</div>\n"
        f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>\n"
        "</body>\n</html>\n"
    )


def write_html(results: Sequence[JobResult], folder: Path) -> Path:
    """Writes ``folder/report.html`` atomically (creating the folder); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / HTML_NAME
    # A page half written by an interrupted batch would be read as the whole story.
    handle, temporary = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(render_html(results))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
