"""The HTML page of ``--report``: it parses, holds every job's row, and escapes hostile names."""

from __future__ import annotations

from html.parser import HTMLParser

from unframe.converters.batch.jobs import Job, JobResult
from unframe.converters.batch.report import HTML_NAME, write_html

HOSTILE = '<script>alert("x")</script>&amp;.onnx'


class _Table(HTMLParser):
    """Collects the text of each table row's cells, and every tag and attribute seen."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: list[str] = []
        self.links: list[str] = []
        self._cell: list[str] | None = None
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.links += [value or "" for name, value in attrs if name in ("src", "href")]
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _results() -> list[JobResult]:
    validated = {"ok": True, "outputs": [{"name": "y", "max_abs": 2.5e-7}, {"max_abs": 1e-6}]}
    return [
        JobResult(Job("a.onnx", "caffe2", "out/a"), ok=True, seconds=1.25, validation=validated),
        JobResult(
            Job(HOSTILE, "onnx", "out/<b>evil</b>.onnx", source="onnx"),
            ok=False,
            seconds=0.5,
            error=f"{HOSTILE}: not a readable ONNX model",
            exit_code=2,
        ),
        JobResult(Job("c.onnx", "pytorch", "out/c.pt2"), ok=True, skipped=True),
    ]


def _parse(tmp_path) -> tuple[_Table, str]:
    page = write_html(_results(), tmp_path / "report")
    assert page == tmp_path / "report" / HTML_NAME
    text = page.read_text(encoding="utf-8")
    table = _Table()
    table.feed(text)
    table.close()
    return table, text


def test_the_page_has_one_row_per_job_with_its_fields(tmp_path):
    table, _ = _parse(tmp_path)
    assert len(table.rows) == 3
    # columns: #, src, from, to, out, status, seconds, exit code, error, validation max error
    first, second, third = table.rows
    assert first[1:8] == ["a.onnx", "", "caffe2", "out/a", "ok", "1.25", "0"]
    assert first[9] == "1e-06"  # the larger of the two outputs' max_abs
    assert second[1:8] == [HOSTILE, "onnx", "onnx", "out/<b>evil</b>.onnx", "failed", "0.50", "2"]
    assert second[8] == f"{HOSTILE}: not a readable ONNX model"
    assert second[9] == ""
    assert third[5] == "skipped"


def test_hostile_names_are_text_not_markup(tmp_path):
    table, text = _parse(tmp_path)
    # The only elements are the page's own: no script, no <b> from the output name.
    assert "script" not in table.tags and "b" not in table.tags
    assert "<script>" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;amp;.onnx" in text


def test_the_page_is_self_contained_with_a_summary(tmp_path):
    table, text = _parse(tmp_path)
    assert table.links == []  # no external stylesheet, script or image
    assert "<style>" in text
    assert "3 jobs" in text and "1 ok" in text and "1 failed" in text and "1 skipped" in text
    assert "exit codes of failures: 2" in text
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [HTML_NAME]


def test_an_empty_batch_still_makes_a_page(tmp_path):
    table, text = _parse_empty(tmp_path)
    assert table.rows == [] and "0 jobs" in text and "every job succeeded" in text


def _parse_empty(tmp_path) -> tuple[_Table, str]:
    text = write_html([], tmp_path).read_text(encoding="utf-8")
    table = _Table()
    table.feed(text)
    return table, text
