"""Ops Caffe2 lacks, built from ones it has: checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from unframe.backends.caffe2.driver import export_model
from unframe.backends.caffe2.native.executor import run_net
from unframe.shared_ir.errors import UnsupportedOpsError


def _one_node(
    node: onnx.NodeProto, inputs: list[onnx.ValueInfoProto], output: onnx.ValueInfoProto
) -> ir.Model:
    graph = helper.make_graph([node], "one", inputs, [output])
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))


def _run(model: ir.Model, feeds: dict[str, np.ndarray]) -> np.ndarray:
    nets = export_model(model)
    (result,) = run_net(nets.predict_net, nets.init_net, feeds).values()
    return result


def test_det_of_a_3x3_matrix() -> None:
    # Laplace expansion along the first row: 6(-14-40) - 1(28-10) + 1(32+4) = -306.
    model = _one_node(
        helper.make_node("Det", ["x"], ["y"]),
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])],
        helper.make_tensor_value_info("y", TensorProto.FLOAT, []),
    )
    x = np.array([[6, 1, 1], [4, -2, 5], [2, 8, 7]], dtype=np.float32)
    assert float(_run(model, {"x": x})) == -306.0


def test_det_of_a_4x4_matrix_is_refused() -> None:
    model = _one_node(
        helper.make_node("Det", ["x"], ["y"]),
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])],
        helper.make_tensor_value_info("y", TensorProto.FLOAT, []),
    )
    with pytest.raises(UnsupportedOpsError, match="Det"):
        export_model(model)


def test_matmul_integer_past_exact_float_range_is_refused() -> None:
    # 259 products of 255 * 255 can pass 2**24, where float32 stops holding every integer.
    model = _one_node(
        helper.make_node("MatMulInteger", ["a", "b"], ["y"]),
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, 259]),
         helper.make_tensor_value_info("b", TensorProto.UINT8, [259, 1])],
        helper.make_tensor_value_info("y", TensorProto.INT32, [1, 1]),
    )  # fmt: skip
    with pytest.raises(UnsupportedOpsError, match="MatMulInteger"):
        export_model(model)


def test_matmul_integer_at_the_exact_limit() -> None:
    model = _one_node(
        helper.make_node("MatMulInteger", ["a", "b"], ["y"]),
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, 258]),
         helper.make_tensor_value_info("b", TensorProto.UINT8, [258, 1])],
        helper.make_tensor_value_info("y", TensorProto.INT32, [1, 1]),
    )  # fmt: skip
    ones = np.full((1, 258), 255, dtype=np.uint8)
    got = _run(model, {"a": ones, "b": ones.T.copy()})
    assert got.dtype == np.int32 and int(got[0, 0]) == 258 * 255 * 255


def test_non_zero_coordinates_in_row_major_order() -> None:
    model = _one_node(
        helper.make_node("NonZero", ["x"], ["y"]),
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        helper.make_tensor_value_info("y", TensorProto.INT64, [2, None]),
    )
    x = np.array([[0, 2, 0], [3, 0, 4]], dtype=np.float32)
    np.testing.assert_array_equal(_run(model, {"x": x}), [[0, 1, 1], [1, 0, 2]])
