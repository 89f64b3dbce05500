"""Core ML backend, quantization: single-node models exported to .mlpackage, re-imported through
the frontend and run on onnxruntime, against onnxruntime on the source (seeded inputs).

The values sit on the traps: halves (rounded to even), values past the quantized range
(saturated), per-axis and blocked scales, zero points, float16 scales."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from unframe.converters.adapters.coreml import CoreMLFramework
from unframe.shared_ir.errors import UnsupportedOpsError
from unframe.shared_ir.runner import run_onnxruntime

pytest.importorskip("coremltools", reason="the coreml extra is not installed")


def _model(
    op: str,
    feeds: dict[str, np.ndarray],
    constants: dict[str, np.ndarray],
    inputs: list[str],
    outputs: dict[str, int],
    opset: int = 21,
    **attributes: Any,
) -> ir.Model:
    node = helper.make_node(op, inputs, list(outputs), **attributes)
    graph = helper.make_graph(
        [node],
        op.lower(),
        [
            helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape
            )
            for name, array in feeds.items()
        ],
        [helper.make_tensor_value_info(name, dtype, None) for name, dtype in outputs.items()],
        [numpy_helper.from_array(array, name) for name, array in constants.items()],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ir.from_proto(proto)


def _check(model: ir.Model, feeds: dict[str, np.ndarray]) -> None:
    expected = run_onnxruntime(ir.from_proto(ir.to_proto(model)), feeds)
    actual = CoreMLFramework().run_ir(model, feeds)
    for name, want in expected.items():
        assert actual[name].dtype == want.dtype, name
        np.testing.assert_allclose(actual[name], want, rtol=1e-6, atol=0, err_msg=name)


def _halves_and_extremes(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Halves (-2.5, -0.5, 0.5, 1.5, 2.5...), values far past any 8-bit range, random ones."""
    values = rng.integers(-8, 8, size=shape) + 0.5
    values.flat[::3] = rng.standard_normal(values.size)[::3] * 200
    return values.astype(np.float32)


@pytest.mark.parametrize("zero_type", [np.int8, np.uint8, np.int16])
def test_quantize_linear_rounds_half_to_even_and_saturates_per_axis(zero_type: type) -> None:
    rng = np.random.default_rng(0)
    x = _halves_and_extremes(rng, (2, 3, 4))
    model = _model(
        "QuantizeLinear",
        {"x": x},
        {
            "scale": np.array([1.0, 0.5, 2.0], np.float32),
            "zero": np.array([3, 0, 7], zero_type),
        },
        ["x", "scale", "zero"],
        {"y": helper.np_dtype_to_tensor_dtype(np.dtype(zero_type))},
        axis=1,
    )
    _check(model, {"x": x})


def test_quantize_and_dequantize_blocked() -> None:
    rng = np.random.default_rng(1)
    x = _halves_and_extremes(rng, (3, 5))
    scale = np.array([[1.0, 2.0, 0.5], [0.25, 1.0, 4.0], [2.0, 2.0, 1.0]], np.float32)
    zero = np.array([[1, 2, 3], [0, 0, 0], [9, 8, 7]], np.uint16)
    quantize = _model(
        "QuantizeLinear",
        {"x": x},
        {"scale": scale, "zero": zero},
        ["x", "scale", "zero"],
        {"y": TensorProto.UINT16},
        axis=1,
        block_size=2,
    )
    _check(quantize, {"x": x})
    q = rng.integers(-32768, 32767, size=(3, 5)).astype(np.int16)
    dequantize = _model(
        "DequantizeLinear",
        {"q": q},
        {"scale": scale, "zero": zero.astype(np.int16)},
        ["q", "scale", "zero"],
        {"y": TensorProto.FLOAT},
        axis=1,
        block_size=2,
    )
    _check(dequantize, {"q": q})


@pytest.mark.parametrize("scale_type", [np.float32, np.float16])
def test_qlinear_matmul_requantizes_like_onnxruntime(scale_type: type) -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(-128, 127, size=(2, 3, 4)).astype(np.int8)
    b = rng.integers(-128, 127, size=(4, 5)).astype(np.int8)
    constants = {
        "a_scale": np.array(0.05, scale_type),
        "a_zero": np.array(3, np.int8),
        "b_scale": np.array(0.02, scale_type),
        "b_zero": np.array(-2, np.int8),
        "y_scale": np.array(0.1, scale_type),
        "y_zero": np.array(-5, np.int8),
    }
    names = ["a", "a_scale", "a_zero", "b", "b_scale", "b_zero", "y_scale", "y_zero"]
    _check(
        _model("QLinearMatMul", {"a": a, "b": b}, constants, names, {"y": TensorProto.INT8}),
        {"a": a, "b": b},
    )


def test_integer_convolution_and_matmul_with_zero_points() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 255, size=(1, 2, 5, 5)).astype(np.uint8)
    w = rng.integers(0, 255, size=(3, 2, 3, 3)).astype(np.uint8)
    conv = _model(
        "ConvInteger",
        {"x": x},
        {"w": w, "x_zero": np.array(7, np.uint8), "w_zero": np.array(128, np.uint8)},
        ["x", "w", "x_zero", "w_zero"],
        {"y": TensorProto.INT32},
        pads=[1, 0, 1, 2],
        strides=[2, 1],
    )
    _check(conv, {"x": x})
    a = rng.integers(0, 255, size=(4, 3)).astype(np.uint8)
    b = rng.integers(0, 255, size=(3, 2)).astype(np.uint8)
    matmul = _model(
        "MatMulInteger",
        {"a": a, "b": b},
        {"a_zero": np.array(200, np.uint8), "b_zero": np.array(5, np.uint8)},
        ["a", "b", "a_zero", "b_zero"],
        {"y": TensorProto.INT32},
    )
    _check(matmul, {"a": a, "b": b})


def test_dynamic_quantize_linear_of_a_range_without_zero() -> None:
    x = np.array([[2.5, 7.0, 3.25], [4.0, 5.5, 6.0]], np.float32)  # min above 0: 0 joins
    model = _model(
        "DynamicQuantizeLinear",
        {"x": x},
        {},
        ["x"],
        {"y": TensorProto.UINT8, "scale": TensorProto.FLOAT, "zero": TensorProto.UINT8},
    )
    _check(model, {"x": x})


def test_float8_quantization_is_refused_by_name() -> None:
    x = np.zeros((2,), np.float32)
    model = _model(
        "QuantizeLinear",
        {"x": x},
        {"scale": np.array(1.0, np.float32)},
        ["x", "scale"],
        {"y": TensorProto.FLOAT8E4M3FN},
        output_dtype=TensorProto.FLOAT8E4M3FN,
    )
    with pytest.raises(UnsupportedOpsError) as caught:
        CoreMLFramework().run_ir(model, {"x": x})
    assert caught.value.exit_code == 3
    assert "FLOAT8E4M3FN" in caught.value.ops[0].reason
