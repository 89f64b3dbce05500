"""Small ONNX models built with onnx.helper for the PyTorch backend tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _model(graph: onnx.GraphProto, opset: int = OPSET) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def dynamic_cnn() -> onnx.ModelProto:
    """Conv -> Relu -> Reshape to [batch, -1] through Shape/Gather/Concat -> Gemm; batch symbolic."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "conv.w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "conv.b")
    fc = numpy_helper.from_array(rng.standard_normal((5, 4 * 8 * 8)).astype(np.float32), "fc.w")
    fcb = numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "fc.b")
    zero = numpy_helper.from_array(np.array([0], dtype=np.int64), "zero")
    minus = numpy_helper.from_array(np.array([-1], dtype=np.int64), "minus_one")
    nodes = [
        helper.make_node("Conv", ["x", "conv.w", "conv.b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Shape", ["r"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Concat", ["n", "minus_one"], ["shape"], axis=0),
        helper.make_node("Reshape", ["r", "shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "dynamic_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 5])],
        [w, b, fc, fcb, zero, minus],
    )
    return _model(graph)


def if_model() -> onnx.ModelProto:
    """y = If(cond, x * 2 + bias, x - bias): branches read outer values."""
    bias = numpy_helper.from_array(np.array([1.0, 2.0, 3.0], dtype=np.float32), "bias")
    two = numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two")
    then_graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "two"], ["t0"]),
            helper.make_node("Add", ["t0", "bias"], ["then_out"]),
        ],
        "then",
        [],
        [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, ["n", 3])],
    )
    else_graph = helper.make_graph(
        [helper.make_node("Sub", ["x", "bias"], ["else_out"])],
        "else",
        [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, ["n", 3])],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph)],
        "if_model",
        [
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
        [bias, two],
    )
    return _model(graph)


def loop_model() -> onnx.ModelProto:
    """acc = x; repeat trip_count times: acc = acc * 2 + i (i the iteration number)."""
    two = numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two")
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Cast", ["i"], ["i_float"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["acc_in", "two"], ["doubled"]),
            helper.make_node("Add", ["doubled", "i_float"], ["acc_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [3]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [3]),
        ],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trip_count", "", "x"], ["y"], body=body)],
        "loop_model",
        [
            helper.make_tensor_value_info("trip_count", TensorProto.INT64, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        [two],
    )
    return _model(graph)


#: Names that must never reach generated code as they are.
NASTY = ["../../etc/passwd", "import os", "class", "a.b.c", "x y", "0start", "lambda", "__init__"]


def nasty_names_model() -> onnx.ModelProto:
    """Value, node, initializer and input names that are paths, keywords, code, dotted."""
    weight = numpy_helper.from_array(np.full((4, 4), 0.5, dtype=np.float32), NASTY[1])
    bias = numpy_helper.from_array(np.arange(4, dtype=np.float32), NASTY[3])
    nodes = [
        helper.make_node("MatMul", [NASTY[0], NASTY[1]], [NASTY[2]], name="import sys; boom"),
        helper.make_node("Add", [NASTY[2], NASTY[3]], [NASTY[4]], name="../node"),
        helper.make_node("Relu", [NASTY[4]], [NASTY[5]], name="def"),
        helper.make_node("Mul", [NASTY[5], NASTY[6]], [NASTY[7]], name="for"),
    ]
    graph = helper.make_graph(
        nodes,
        "nasty",
        [
            helper.make_tensor_value_info(NASTY[0], TensorProto.FLOAT, [2, 4]),
            helper.make_tensor_value_info(NASTY[6], TensorProto.FLOAT, [2, 4]),
        ],
        [helper.make_tensor_value_info(NASTY[7], TensorProto.FLOAT, [2, 4])],
        [weight, bias],
    )
    return _model(graph)


def run_onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(v) for v in session.run(None, feeds)]


def loop_scan_model(trips: int = 4) -> onnx.ModelProto:
    """A Loop with a constant trip count and a scan output: y_k = x * (k + 1)."""
    count = numpy_helper.from_array(np.array(trips, dtype=np.int64), "count")
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["acc_in", "x"], ["acc_out"]),
            helper.make_node("Identity", ["acc_out"], ["scan_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, ["n"]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("scan_out", TensorProto.FLOAT, ["n"]),
        ],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "zero"], ["start"]),
            helper.make_node("Loop", ["count", "", "start"], ["final", "ys"], body=body),
        ],
        "loop_scan",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [
            helper.make_tensor_value_info("final", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("ys", TensorProto.FLOAT, [trips, "n"]),
        ],
        [count, numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")],
    )
    return _model(graph)


def scan_model() -> onnx.ModelProto:
    """Scan-16 over a [T, n] sequence read backwards: running sum, and each step's sum times w."""
    body = helper.make_graph(
        [
            helper.make_node("Add", ["sum_in", "x_t"], ["sum_out"]),
            helper.make_node("Mul", ["sum_out", "w"], ["y_t"]),  # w: an outer-scope weight
        ],
        "body",
        [
            helper.make_tensor_value_info("sum_in", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("x_t", TensorProto.FLOAT, ["n"]),
        ],
        [
            helper.make_tensor_value_info("sum_out", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("y_t", TensorProto.FLOAT, ["n"]),
        ],
    )
    scan = helper.make_node(
        "Scan",
        ["init", "xs"],
        ["total", "ys"],
        body=body,
        num_scan_inputs=1,
        scan_input_directions=[1],
    )
    graph = helper.make_graph(
        [scan],
        "scan",
        [
            helper.make_tensor_value_info("init", TensorProto.FLOAT, [3]),
            helper.make_tensor_value_info("xs", TensorProto.FLOAT, ["T", 3]),
        ],
        [
            helper.make_tensor_value_info("total", TensorProto.FLOAT, [3]),
            helper.make_tensor_value_info("ys", TensorProto.FLOAT, ["T", 3]),
        ],
        [numpy_helper.from_array(np.array([1.0, -2.0, 0.5], dtype=np.float32), "w")],
    )
    return _model(graph)


def shape_output_model() -> onnx.ModelProto:
    """Outputs Shape(x) as a tensor, and x reshaped with a shape computed from constants."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Mod", ["seven", "four"], ["three"]),  # constant arithmetic
        helper.make_node("Concat", ["minus_one", "three"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "shape_output",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [
            helper.make_tensor_value_info("s", TensorProto.INT64, [2]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3]),
        ],
        [
            numpy_helper.from_array(np.array([7], dtype=np.int64), "seven"),
            numpy_helper.from_array(np.array([4], dtype=np.int64), "four"),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "minus_one"),
        ],
    )
    return _model(graph)
