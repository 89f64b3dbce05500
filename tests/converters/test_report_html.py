"""``convert --report DIR``: one conversion's page, and the inline SVG histograms it draws.

Oracles: the model's own weights (parameter counts and bytes computed here with numpy), hand
counted histogram bins, and a backend bug the test plants itself (Caffe2 writing Sigmoid as Tanh)
whose node the page must name. The failing page is rendered in a real headless Chromium and its
histogram bars found in the screenshot.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from browser import mask_of, runs, screenshot
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from unframe.cli.main import cli as cli_main
from unframe.converters.report_html import BAR_COLOUR, svg_histogram


def gated_mlp(path: Path) -> tuple[Path, list[np.ndarray]]:
    rng = np.random.default_rng(3)
    weights = [
        rng.standard_normal((8, 16)).astype(np.float32),
        rng.standard_normal((16, 5)).astype(np.float32),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
            helper.make_node("Sigmoid", ["h"], ["s"], name="gate"),
            helper.make_node("MatMul", ["s", "w2"], ["y"], name="fc2"),
        ],
        "gated_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 5])],
        initializer=[numpy_helper.from_array(w, f"w{i + 1}") for i, w in enumerate(weights)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path, weights


@pytest.fixture
def caffe2_sigmoid_as_tanh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted backend bug: the Caffe2 exporter writes ONNX Sigmoid as Caffe2 Tanh."""
    from unframe.backends.caffe2.driver import export_registry
    from unframe.backends.caffe2.ops.elementwise import _one_to_one

    registry = export_registry()
    key = ("", "Sigmoid")
    wrong = [
        dataclasses.replace(entry, function=_one_to_one("Sigmoid", "Tanh", entry.since))
        for entry in registry._entries[key]
    ]
    monkeypatch.setitem(registry._entries, key, wrong)


def _convert(source: Path, out: Path, report: Path, *extra: str) -> int:
    outcome = CliRunner().invoke(
        cli_main, ["convert", str(source), "-o", str(out), "--report", str(report), *extra]
    )
    return outcome.exit_code


def test_a_passing_conversion_s_page_shows_both_graphs_and_its_validation(tmp_path):
    source, weights = gated_mlp(tmp_path / "m.onnx")

    exit_code = _convert(source, tmp_path / "m.caffe2", tmp_path / "report")

    assert exit_code == 0
    page = (tmp_path / "report" / "convert.html").read_text()
    assert "outputs match" in page and "FAIL" not in page
    parameters = sum(w.size for w in weights)
    nbytes = sum(w.nbytes for w in weights)
    # Source and target both hold every weight: the counts appear once per side.
    assert page.count(f'<td class="num">{parameters:,}</td>') == 2
    assert page.count(f'<td class="num">{nbytes:,}</td>') == 2
    assert page.count("<td>Sigmoid</td>") == 2 and page.count("<td>MatMul</td>") == 2
    assert page.count("<svg ") == 1 and "|error| of y" in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")


def test_a_failing_conversion_s_page_names_the_layer_and_draws_its_errors(
    tmp_path, caffe2_sigmoid_as_tanh
):
    source, _ = gated_mlp(tmp_path / "m.onnx")

    exit_code = _convert(source, tmp_path / "m.caffe2", tmp_path / "report", "--locate")

    assert exit_code == 1  # outputs differ; the page is still written
    page_path = tmp_path / "report" / "convert.html"
    page = page_path.read_text()
    assert "outputs differ" in page and "diverges at gate (Sigmoid)" in page
    image = screenshot(page_path, tmp_path, width=900, height=700)
    bars = mask_of(image, BAR_COLOUR)
    assert bars.sum() > 200  # drawn, not only present in the markup
    columns = runs(bars.any(axis=0))
    assert len(columns) >= 3, columns  # errors spread over several bins: several bars
    top, bottom = runs(bars.any(axis=1))[0]
    assert bottom - top > 40  # the tallest bar spans most of the plot's height


def test_histogram_bars_are_as_tall_as_their_counts():
    values = np.array([0.0, 0.1, 0.1, 0.9, 1.0, 1.0, 1.0, 1.0, np.nan])

    svg = svg_histogram(values, title="t", bins=2, height=128)

    heights = [float(h) for h in re.findall(r'class="bar"[^>]*height="([0-9.]+)"', svg)]
    # bins [0, 0.5) and [0.5, 1]: 3 and 5 values; the plot is 128 - 28 - 22 = 78 px tall
    assert heights == pytest.approx([78 * 3 / 5, 78.0])
    assert "1 not finite" in svg
