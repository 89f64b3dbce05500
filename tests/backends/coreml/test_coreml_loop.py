"""Core ML backend, Loop: ONNX's Loop as MIL's while_loop (trip count and condition both given,
either alone; the iteration number read in the body; an outer value), exported, re-imported
through the frontend (while_loop back to Loop) and run on onnxruntime against onnxruntime on the
source model; scan outputs (a loop variable that grows an iteration) and their refusal where
their slice shape is unknown."""

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


def _loop_model(
    trip: bool, cond: bool, scan_output: bool = False, unknown_scan_shape: bool = False
) -> ir.Model:
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
        outputs.append(helper.make_tensor_value_info("shift", TensorProto.FLOAT, [2, 3]))
    if unknown_scan_shape:  # expanded to a shape given at run time
        body_nodes.append(helper.make_node("Expand", ["shift", "target"], ["spread"]))
        outputs[-1] = helper.make_tensor_value_info("spread", TensorProto.FLOAT, None)
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
    if unknown_scan_shape:
        inputs.append(helper.make_tensor_value_info("target", TensorProto.INT64, [3]))
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


def test_loop_scan_outputs_match_onnxruntime() -> None:
    model = _loop_model(True, True, scan_output=True)
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    for m in (0, 2, 40):
        feeds = {"x": x, "m": np.array(m, np.int64), "keep": np.array(True)}
        expected = run_onnxruntime(ir.from_proto(ir.to_proto(model)), feeds)
        actual = CoreMLFramework().run_ir(model, feeds)
        for name in ("y", "ys"):
            assert actual[name].shape == expected[name].shape
            np.testing.assert_allclose(actual[name], expected[name], rtol=1e-5, atol=1e-5)


def test_loop_scan_output_of_an_unknown_shape_is_refused_by_name() -> None:
    with pytest.raises(UnsupportedOpsError) as raised:
        export_mlprogram(_loop_model(True, True, scan_output=True, unknown_scan_shape=True))
    assert "scan output 'spread'" in raised.value.ops[0].reason
