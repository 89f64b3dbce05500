"""The conformance harness on a subset of onnx's node tests, with the ONNX backend as oracle host."""

from __future__ import annotations

import json

import numpy as np
import onnx_ir as ir
from click.testing import CliRunner

from unframe.cli.main import cli
from unframe.converters.conformance import (
    collect_node_tests,
    node_test_op,
    run_conformance,
    run_test,
)
from unframe.converters.framework import ConvertOptions
from unframe.converters.registry import get_framework


def test_collects_node_tests_by_op_and_names_their_op():
    cases = collect_node_tests(["Softmax"])
    assert len(cases) >= 10
    assert {node_test_op(c) for c in cases} == {"Softmax"}
    # The *_expanded variants hold many nodes but still count for Softmax.
    assert any(c.name.endswith("_expanded") for c in cases)


def test_onnx_backend_passes_relu_add_and_reports_json(tmp_path):
    report_path = tmp_path / "onnx.md"
    result = CliRunner().invoke(
        cli,
        [
            "conformance",
            "--backend",
            "onnx",
            "--op",
            "Relu",
            "--op",
            "Add",
            "--report",
            str(report_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"backend", "passed", "failed", "skipped", "ops", "failures"}
    assert data["backend"] == "onnx" and data["failed"] == 0 and data["passed"] >= 4
    assert data["ops"]["Relu"]["passed"] >= 1 and data["ops"]["Add"]["failed"] == 0
    lines = report_path.read_text().strip().splitlines()
    assert lines[-1] == f"{data['passed']} passed, 0 failed, {data['skipped']} skipped"
    assert (
        sum(1 for line in lines if line.startswith("| test_")) == data["passed"] + data["skipped"]
    )


class WrongRelu:
    """A deliberately wrong runtime: the harness must catch it against onnx's expected outputs."""

    name = "wrong"

    def unsupported_nodes(self, model):
        return []

    def run_ir(self, model: ir.Model, inputs, options: ConvertOptions | None = None):
        (x,) = inputs.values()
        return {"y": np.abs(x)}


def test_a_wrong_result_fails_with_the_error_figures():
    (case,) = collect_node_tests(["Relu"], name_pattern="^test_relu$")
    outcome = run_test(WrongRelu(), case)  # type: ignore[arg-type]
    assert outcome.status == "fail"
    assert "elements mismatched" in outcome.reason
    passing = run_conformance(get_framework("onnx"), [case])
    assert passing.summary_line() == "1 passed, 0 failed, 0 skipped"
    assert passing.supported_ops() == ["Relu"]


class RefusesRelu:
    """A backend that refuses Relu for a reason (not a missing converter) and has no Abs."""

    name = "refusing"

    def unsupported_nodes(self, model):
        from unframe.shared_ir.errors import UnsupportedOp

        return [
            UnsupportedOp("r1", "Relu", reason="Relu on float only"),
            UnsupportedOp("r2", "Relu", reason="a second node, the same kind"),
            UnsupportedOp("a", "Abs", reason="no refusing export converter"),
        ]


def test_a_refusal_keeps_the_backends_reason():
    (case,) = collect_node_tests(["Relu"], name_pattern="^test_relu$")
    outcome = run_test(RefusesRelu(), case)  # type: ignore[arg-type]
    assert (outcome.status, outcome.reason) == (
        "fail",
        "unsupported: no converter for Abs; Relu: Relu on float only",
    )
