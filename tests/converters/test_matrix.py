"""``unframe matrix``: every source into every framework, validated, with failing cells located.

Oracles: onnxruntime (the ONNX sources' own outputs, which validation compares every cell with),
the ops each backend lacks (Caffe2 has no Einsum: a cell that must fail with exit 3's message), and
a backend bug the test plants itself (Caffe2 writing Sigmoid as Tanh: the located layer must be
that Sigmoid). The page is rendered in a real headless Chromium and its heat-map colours found in
the screenshot where the table puts them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from browser import mask_of, runs, screenshot
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from unframe.cli.main import cli as cli_main
from unframe.converters.batch import Job, JobResult, ProgressCallback
from unframe.converters.batch.jobs import run_job
from unframe.converters.matrix import matrix
from unframe.converters.report_html import FAIL_COLOUR, PASS_COLOUR, matrix_page

CELL_KEYS = {"src", "from", "to", "ok", "max_abs", "seconds", "error", "locate"}


def save_graph(path: Path, nodes: list[onnx.NodeProto], weights: list[onnx.TensorProto]) -> Path:
    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        initializer=weights,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def einsum_models(folder: Path) -> tuple[Path, Path]:
    """Two ONNX models with an Einsum (which Caffe2's backend lacks): alone, and in an MLP."""
    rng = np.random.default_rng(11)
    w1 = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((3, 3)).astype(np.float32), "w2")
    alone = save_graph(
        folder / "einsum.onnx",
        [helper.make_node("Einsum", ["x", "w1"], ["y"], equation="ij,jk->ik", name="ein")],
        [w1],
    )
    mlp = save_graph(
        folder / "mlp.onnx",
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
            helper.make_node("Relu", ["h"], ["r"], name="relu"),
            helper.make_node("Einsum", ["r", "w2"], ["y"], equation="ij,jk->ik", name="fc2"),
        ],
        [w1, w2],
    )
    return alone, mlp


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, int]:
    folder = tmp_path_factory.mktemp("matrix")
    sources = einsum_models(folder)
    outcome = CliRunner().invoke(
        cli_main,
        ["matrix", *map(str, sources), "--frameworks", "onnx,pytorch,caffe2", "--json",
         "--report", str(folder / "report"), "-j", "1"],
    )  # fmt: skip
    return folder, json.loads(outcome.stdout), outcome.exit_code


def test_every_cell_in_the_json_contract_and_the_cell_a_target_cannot_write_fails(matrix_run):
    folder, payload, exit_code = matrix_run

    assert exit_code == 1  # one failing cell fails the run
    assert set(payload) == {"ok", "cells"} and payload["ok"] is False
    assert all(set(cell) == CELL_KEYS for cell in payload["cells"])
    pairs = [(Path(c["src"]).name, c["from"], c["to"]) for c in payload["cells"]]
    assert pairs == [
        (name, "onnx", target)
        for name in ("einsum.onnx", "mlp.onnx")
        for target in ("onnx", "pytorch", "caffe2")
    ]
    for cell in payload["cells"]:
        if cell["to"] == "caffe2":
            assert cell["ok"] is False and cell["max_abs"] is None and cell["locate"] is None
            assert cell["error"].startswith("exit 3: ") and "Einsum" in cell["error"]
        else:  # compared with onnxruntime's outputs of the source
            assert cell["ok"] is True and cell["error"] is None and cell["locate"] is None
            assert 0 <= cell["max_abs"] < 1e-5 and cell["seconds"] > 0
    assert json.loads((folder / "report" / "matrix.json").read_text()) == payload


def test_the_heat_map_renders_its_cells_in_the_table_s_places(matrix_run, tmp_path):
    folder, _, _ = matrix_run
    image = screenshot(folder / "report" / "matrix.html", tmp_path, width=900, height=400)

    passed, failed = mask_of(image, PASS_COLOUR), mask_of(image, FAIL_COLOUR)
    # One row (ONNX sources), three columns: onnx and pytorch pass, caffe2 fails, in that order.
    green_columns, red_columns = runs(passed.any(axis=0)), runs(failed.any(axis=0))
    assert len(green_columns) == 2 and len(red_columns) == 1, (green_columns, red_columns)
    assert green_columns[0][1] <= green_columns[1][0] and green_columns[1][1] <= red_columns[0][0]
    for start, end in (*green_columns, *red_columns):
        assert end - start > 100  # a whole cell, not a stray pixel of text
    green_rows, red_rows = runs(passed.any(axis=1)), runs(failed.any(axis=1))
    assert len(green_rows) == 1 and green_rows == red_rows  # the same row of the table


class InProcess:
    """Runs the matrix's jobs in this process, so a fault planted here reaches them."""

    def run(
        self,
        jobs: Sequence[Job],
        *,
        workers: int,
        timeout: float | None,
        on_progress: ProgressCallback | None = None,
    ) -> list[JobResult]:
        return [run_job(job, test_hooks={}) for job in jobs]


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


def test_a_mismatching_cell_names_its_first_diverging_layer(tmp_path, caffe2_sigmoid_as_tanh):
    rng = np.random.default_rng(5)
    source = save_graph(
        tmp_path / "chain.onnx",
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
            helper.make_node("Sigmoid", ["h"], ["s"], name="gate"),
            helper.make_node("MatMul", ["s", "w2"], ["y"], name="fc2"),
        ],
        [
            numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "w1"),
            numpy_helper.from_array(rng.standard_normal((3, 3)).astype(np.float32), "w2"),
        ],
    )

    result = matrix([source], frameworks=["onnx", "caffe2"], executor=InProcess())

    onnx_cell, caffe2_cell = result.cells
    assert onnx_cell.ok and not caffe2_cell.ok and not result.ok
    assert caffe2_cell.error is not None and caffe2_cell.error.startswith("exit 1: ")
    assert caffe2_cell.max_abs is not None and caffe2_cell.max_abs > 1e-3
    located = caffe2_cell.locate
    assert located is not None and (located["node"], located["op"]) == ("gate", "Sigmoid")
    assert "gate (Sigmoid)" in matrix_page(result)


def test_bad_framework_names_and_missing_sources_fail_before_any_cell(tmp_path):
    source = einsum_models(tmp_path)[0]
    unknown = CliRunner().invoke(cli_main, ["matrix", str(source), "--frameworks", "nope"])
    missing = CliRunner().invoke(cli_main, ["matrix", str(tmp_path / "absent.onnx")])

    assert unknown.exit_code == 2 and "unknown framework 'nope'" in unknown.stderr
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_a_core_ml_cell_says_it_was_re_imported_not_run(tmp_path):
    from unframe.converters.registry import get_framework

    if get_framework("coreml").runtime_unavailable() is None:
        pytest.skip("Core ML runs here (macOS): its cells are run, not re-imported")
    weight = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    source = save_graph(
        tmp_path / "m.onnx",
        [
            helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
            helper.make_node("Relu", ["h"], ["y"], name="relu"),
        ],
        [numpy_helper.from_array(weight, "w")],
    )

    result = matrix([source], frameworks=["coreml"], executor=InProcess())

    (cell,) = result.cells
    assert cell.ok and not cell.ran_natively, cell
    assert "re-imported, not run in coreml" in matrix_page(result)


def test_the_terminal_table_on_stdout_and_progress_on_stderr_but_not_with_json(tmp_path):
    source = einsum_models(tmp_path)[0]
    arguments = ["matrix", str(source), "--frameworks", "onnx", "-j", "1"]

    plain = CliRunner().invoke(cli_main, arguments)
    as_json = CliRunner().invoke(cli_main, [*arguments, "--json"])

    assert plain.exit_code == 0 and as_json.exit_code == 0
    assert "einsum.onnx" in plain.stdout and "pass" in plain.stdout
    assert "1 cell(s): 1 pass, 0 fail" in plain.stdout
    assert "[1/1]" in plain.stderr and "-> onnx: ok" in plain.stderr
    assert as_json.stderr == "" and json.loads(as_json.stdout)["ok"] is True


def test_a_report_path_that_is_a_file_is_refused_before_any_cell(tmp_path):
    source = einsum_models(tmp_path)[0]
    taken = tmp_path / "taken"
    taken.write_text("mine")

    outcome = CliRunner().invoke(cli_main, ["matrix", str(source), "--report", str(taken)])
    convert = CliRunner().invoke(
        cli_main, ["convert", str(source), "-o", str(tmp_path / "m.onnx"), "--report", str(taken)]
    )

    assert outcome.exit_code == 2 and "report folder is not a folder" in outcome.stderr
    assert convert.exit_code == 2 and not (tmp_path / "m.onnx").exists()
    assert taken.read_text() == "mine"
