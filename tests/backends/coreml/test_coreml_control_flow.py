"""Core ML backend, control flow: ONNX If as MIL's cond, re-imported as If and run on
onnxruntime against onnxruntime on the source, on both branches."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from unframe.backends.coreml.driver import export_mlprogram
from unframe.converters.adapters.coreml import CoreMLFramework
from unframe.shared_ir.runner import run_onnxruntime

pytest.importorskip("coremltools", reason="the coreml extra is not installed")


def _if_model() -> ir.Model:
    """y = relu(x) * w if flag else -x + w, w an initializer of the main graph read in both."""
    weight = numpy_helper.from_array(np.array([1.5, -2.0, 0.5], np.float32), "w")
    then_branch = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Mul", ["r", "w"], ["t"])],
        "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2, 3])],
    )  # fmt: skip
    else_branch = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["n"]), helper.make_node("Add", ["n", "w"], ["e"])],
        "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2, 3])],
    )  # fmt: skip
    graph = helper.make_graph(
        [
            helper.make_node("Sigmoid", ["x"], ["s"]),
            helper.make_node(
                "If", ["flag"], ["y"], then_branch=then_branch, else_branch=else_branch
            ),
            helper.make_node("Add", ["y", "s"], ["out"]),
        ],
        "branching",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, [1]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [weight],
    )
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


@pytest.mark.parametrize("flag", [True, False])
def test_if_becomes_cond_and_matches_onnxruntime(flag: bool) -> None:
    model = _if_model()
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    feeds = {"x": x, "flag": np.array([flag])}
    expected = run_onnxruntime(ir.from_proto(ir.to_proto(model)), feeds)["out"]
    actual = CoreMLFramework().run_ir(model, feeds)["out"]
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_if_is_one_mil_cond_with_two_blocks() -> None:
    program = export_mlprogram(_if_model()).mlmodel._mil_program
    (cond,) = [op for op in program.functions["main"].operations if op.op_type == "cond"]
    assert len(cond.blocks) == 2
    assert {op.op_type for op in cond.blocks[0].operations} >= {"relu", "mul"}
    assert {op.op_type for op in cond.blocks[1].operations} >= {"add"}
