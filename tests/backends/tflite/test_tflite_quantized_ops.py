"""Integer and quantized ops on LiteRT, whose builtins have no float64 arithmetic and no int32
matrix product: QLinearMatMul, MatMulInteger, ConvInteger and QLinearConv accumulate in float32
(exact integer sums here) and match onnxruntime exactly.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed")
pytest.importorskip("ai_edge_litert", reason="the tflite extra is not installed")
ort = pytest.importorskip("onnxruntime")

from unframe.backends.tflite import run_export, to_tflite  # noqa: E402


def test_integer_matmuls_and_convolutions_match_onnxruntime_on_litert() -> None:
    u8 = TensorProto.UINT8
    inputs = [
        helper.make_tensor_value_info("a", u8, [3, 40]),
        helper.make_tensor_value_info("b", u8, [40, 6]),
        helper.make_tensor_value_info("x", u8, [1, 2, 5, 5]),
        helper.make_tensor_value_info("w", u8, [3, 2, 3, 3]),
    ]
    initializers = [
        helper.make_tensor("a_scale", TensorProto.FLOAT, [], [0.02]),
        helper.make_tensor("a_zero", u8, [], [120]),
        helper.make_tensor("b_scale", TensorProto.FLOAT, [], [0.015]),
        helper.make_tensor("b_zero", u8, [], [131]),
        helper.make_tensor("y_scale", TensorProto.FLOAT, [], [0.9]),
        helper.make_tensor("y_zero", u8, [], [128]),
        helper.make_tensor("w_zeros", u8, [3], [0, 7, 200]),
    ]
    nodes = [
        helper.make_node(
            "QLinearMatMul",
            ["a", "a_scale", "a_zero", "b", "b_scale", "b_zero", "y_scale", "y_zero"],
            ["q"],
        ),
        helper.make_node("MatMulInteger", ["a", "b", "a_zero", "b_zero"], ["m"]),
        helper.make_node("ConvInteger", ["x", "w", "a_zero", "b_zero"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node(
            "QLinearConv",
            ["x", "a_scale", "a_zero", "w", "b_scale", "w_zeros", "y_scale", "y_zero"],
            ["qc"],
            strides=[2, 2],
        ),
    ]
    outputs = [
        helper.make_tensor_value_info("q", u8, None),
        helper.make_tensor_value_info("m", TensorProto.INT32, None),
        helper.make_tensor_value_info("c", TensorProto.INT32, None),
        helper.make_tensor_value_info("qc", u8, None),
    ]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    rng = np.random.default_rng(3)
    feed = {
        "a": rng.integers(0, 256, (3, 40)).astype(np.uint8),
        "b": rng.integers(0, 256, (40, 6)).astype(np.uint8),
        "x": rng.integers(0, 256, (1, 2, 5, 5)).astype(np.uint8),
        "w": rng.integers(0, 256, (3, 2, 3, 3)).astype(np.uint8),
    }
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = dict(zip(["q", "m", "c", "qc"], session.run(None, feed), strict=True))
    got = run_export(to_tflite(ir.from_proto(proto)), feed)
    for name, want in expected.items():
        assert got[name].dtype == want.dtype, name
        np.testing.assert_array_equal(got[name], want, err_msg=name)
