"""Core ML backend, Loop: ONNX's Loop as MIL's while_loop (trip count and condition both given,
either alone; the iteration number read in the body; an outer value), exported, re-imported
through the frontend (while_loop back to Loop) and run on onnxruntime against onnxruntime on the
source model; scan outputs refused by name."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from unframe.backends.coreml.driver import export_mlprogram
from unframe.converters.adapters.coreml import CoreMLFramework
from unframe.shared_ir.errors import UnsupportedOpsError
from unframe.shared_ir.runner import run_onnxruntime

pytest.importorskip("coremltools", reason="the coreml extra is not installed")


def _loop_model(trip: bool, cond: bool, scan_output: bool = False) -> ir.Model:
    """v' = v * 1.5 + iteration * w, while sum(|v'|) < 50 (and fewer than M iterations)."""
    body_nodes = [
        helper.make_node("Cast", ["i"], ["i_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["i_f", "w"], ["shift"]),
        helper.make_node("Mul", ["v_in", "rate"], ["grown"]),
        helper.make_node("Add", ["grown", "shift"], ["v_out"]),
        helper.make_node("ReduceL1", ["v_out"], ["size"], keepdims=0),
        helper.make_node("Less", ["size", "limit"], ["go"]),
    ]
    outputs = [
        helper.make_tensor_value_info("go", TensorProto.BOOL, []),
        helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [2, 3]),
    ]
    if scan_output:
        outputs.append(helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [2, 3]))
    body = helper.make_graph(
        body_nodes,
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [2, 3]),
        ],
        outputs,
        [
            helper.make_tensor("rate", TensorProto.FLOAT, [], [1.5]),
            helper.make_tensor("limit", TensorProto.FLOAT, [], [50.0]),
        ],
    )
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])]
    if trip:
        inputs.append(helper.make_tensor_value_info("m", TensorProto.INT64, []))
    if cond:
        inputs.append(helper.make_tensor_value_info("keep", TensorProto.BOOL, []))
    loop_outputs = ["y"] + (["ys"] if scan_output else [])
    graph = helper.make_graph(
        [
            helper.make_node("Sigmoid", ["x"], ["w"]),
            helper.make_node(
                "Loop", ["m" if trip else "", "keep" if cond else "", "x"], loop_outputs, body=body
            ),
        ],
        "loop",
        inputs,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in loop_outputs],
    )
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)]))


@pytest.mark.parametrize(
    ("trip", "cond", "feeds"),
    [
        (True, True, {"m": 3, "keep": True}),  # stopped by the trip count
        (True, True, {"m": 40, "keep": True}),  # stopped by the condition
        (True, True, {"m": 40, "keep": False}),  # no iteration
        (False, True, {"keep": True}),
        (True, False, {"m": 4}),
    ],
)
def test_loop_as_while_loop_matches_onnxruntime(trip: bool, cond: bool, feeds: dict) -> None:
    model = _loop_model(trip, cond)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    arrays = {"x": x}
    if "m" in feeds:
        arrays["m"] = np.array(feeds["m"], np.int64)
    if "keep" in feeds:
        arrays["keep"] = np.array(feeds["keep"])
    expected = run_onnxruntime(ir.from_proto(ir.to_proto(model)), arrays)["y"]
    actual = CoreMLFramework().run_ir(model, arrays)["y"]
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_loop_is_one_while_loop() -> None:
    program = export_mlprogram(_loop_model(True, True)).mlmodel._mil_program
    assert [op.op_type for op in program.functions["main"].operations].count("while_loop") == 1


def test_loop_with_scan_outputs_is_refused_by_name() -> None:
    with pytest.raises(UnsupportedOpsError) as raised:
        export_mlprogram(_loop_model(True, True, scan_output=True))
    assert "scan output" in raised.value.ops[0].reason
