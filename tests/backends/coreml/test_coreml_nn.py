"""Core ML backend, neural-network ops: onnx's own node tests (their expected outputs are the
oracle) exported to .mlpackage, re-imported through the frontend and run on onnxruntime.

Resize's scales and sizes and ConvTranspose's weight are graph inputs in onnx's tests, while
Core ML's resize ops and conv_transpose take them as constants (as exported models hold them):
those tests also run with every input but the first frozen into an initializer of the test's own
value."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from unframe.converters.conformance import _as_value, collect_node_tests, run_test
from unframe.converters.registry import get_framework
from unframe.shared_ir.options import ConvertOptions
from unframe.shared_ir.runner import run_onnxruntime

pytest.importorskip("coremltools", reason="the coreml extra is not installed")


@functools.cache
def _case(name: str) -> Any:
    (case,) = collect_node_tests(name_pattern=f"^{name}$")
    return case


def _frozen(name: str) -> tuple[ir.Model, dict[str, np.ndarray], list[np.ndarray], Any]:
    """The test's model with inputs 1.. as initializers, its first input and expected outputs."""
    case = _case(name)
    raw_inputs, raw_expected = case.data_sets[0]
    model = ir.from_proto(case.model)
    graph = model.graph
    feeds: dict[str, np.ndarray] = {}
    for index, raw in enumerate(raw_inputs):
        value = graph.inputs[index]
        array = np.asarray(_as_value(raw))
        if index == 0:
            feeds[value.name or ""] = array
            continue
        value.const_value = ir.tensor(array, name=value.name)
        graph.register_initializer(value)
    del graph.inputs[1:]
    return model, feeds, [np.asarray(_as_value(r)) for r in raw_expected], case


@pytest.mark.parametrize(
    "name",
    [
        "test_matmul_1d_1d",  # a vector times a vector: MIL's matmul needed a row and a column
        "test_matmul_4d_1d",
        "test_gemm_default_scalar_bias",  # a rank-0 graph input: fed as (1,), squeezed inside
        "test_dropout_default_ratio",
        "test_dropout_default_mask",  # the mask of inference: all true
        "test_hardmax_axis_0",
        "test_celu",
        "test_shrink_soft",
        "test_mish",
        "test_lrn",
        "test_lppool_2d_same_upper",
        "test_lppool_3d_default",
        "test_group_normalization_example",
        "test_instancenorm_example",  # run-time scale and bias: the formula
        # A weight computed at run time: zeros spread by a constant conv_transpose, then a conv
        "test_convtranspose_dilations",
        "test_convtranspose_group_2_image_3",
        "test_convtranspose_3d",
        "test_convtranspose_output_shape",
        "test_gridsample_reflection_padding",  # no align_corners: MIL's symmetric
        "test_gridsample_nearest_align_corners_1_additional_1",
        "test_gridsample_zeros_padding",
        # Dilated pools: a strided slice per kernel offset, combined; the average divides by
        # counts computed from the padding (ceil_mode's overhang never counted)
        "test_maxpool_2d_dilations",
        "test_maxpool_3d_dilations",
        "test_averagepool_2d_dilations",
        "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_True",
        "test_lppool_2d_dilations",
        # MaxPool's Indices: constants of each offset's flat indices, kept where strictly greater
        "test_maxpool_with_argmax_2d_precomputed_pads",
        "test_maxpool_with_argmax_2d_precomputed_strides",  # storage_order=1: column-major
        # training_mode=1: the batch's statistics, running ones blended by momentum
        "test_batchnorm_example_training_mode",
        "test_celu_float16_expanded",  # elu's alpha in float16 beside float16 x
    ],
)
def test_node_case_passes(name: str) -> None:
    outcome = run_test(get_framework("coreml"), _case(name))
    assert outcome.status == "pass", outcome.reason


@pytest.mark.parametrize(
    "name",
    [
        "test_resize_upsample_scales_nearest",
        "test_resize_upsample_scales_nearest_axes_3_2",
        "test_resize_upsample_sizes_nearest_not_smaller",
        "test_resize_downsample_sizes_nearest_not_larger",
        "test_resize_upsample_scales_linear",  # half_pixel: UNALIGN_CORNERS
        "test_resize_upsample_scales_linear_align_corners",  # STRICT_ALIGN_CORNERS
        "test_upsample_nearest",
        # A constant weight: MIL's conv_transpose (output_shape, SAME, output_padding, groups)
        "test_convtranspose_output_shape",  # rows past the full output: padded, then the bias
        "test_convtranspose_autopad_same",
        "test_convtranspose_kernel_shape",
        "test_convtranspose_group_2",
        "test_convtranspose_dilations",
        # Constant scale and bias: layer_norm, with Mean and InvStdDev computed beside it
        "test_layer_normalization_3d_axis1_epsilon",
        # Constant weights: MIL's lstm (gates reordered, directions side by side)
        "test_lstm_defaults",
        "test_lstm_bidirectional",
        "test_lstm_batchwise",
        "test_lstm_with_initial_bias",
    ],
)
def test_with_constant_inputs_matches_onnx(name: str) -> None:
    model, feeds, expected, case = _frozen(name)
    actual = list(get_framework("coreml").run_ir(model, feeds, ConvertOptions()).values())
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=case.rtol, atol=case.atol)


def _one_node(op: str, shape: list[int], opset: int, *params: np.ndarray, **attrs: Any) -> ir.Model:
    """A one-node float model of ``op`` on input ``x``, its other inputs ``params`` constants."""
    names = ["x"] + [f"p{i}" for i in range(len(params))]
    graph = helper.make_graph(
        [helper.make_node(op, names, ["y"], **attrs)],
        op.lower(),
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            helper.make_tensor(n, TensorProto.FLOAT, p.shape, p.ravel())
            for n, p in zip(names[1:], params, strict=True)
        ],
    )
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


@pytest.mark.parametrize(
    ("op", "shape", "opset", "params", "attrs"),
    [
        # Before opset 13 these flatten to 2-D at axis: over dims 1 and 2 together here.
        ("Softmax", [2, 3, 4], 11, (), {"axis": 1}),
        ("LogSoftmax", [2, 3, 4], 11, (), {"axis": 1}),
        ("Hardmax", [2, 3, 4], 11, (), {"axis": 1}),
        ("Softmax", [2, 3, 4], 11, (), {}),
        # Opset 18: one scale and bias per group, repeated over its channels.
        ("GroupNormalization", [2, 6, 3, 3], 18, ("group", "group"), {"num_groups": 3}),
        # Rank 5: instance_norm takes rank 3 or 4, the formula the rest.
        ("InstanceNormalization", [1, 2, 3, 2, 2], 17, ("channel", "channel"), {}),
    ],
)
def test_nn_op_matches_onnxruntime(
    op: str, shape: list[int], opset: int, params: tuple[str, ...], attrs: dict[str, Any]
) -> None:
    rng = np.random.default_rng(0)
    sizes = {"group": attrs.get("num_groups", 0), "channel": shape[1]}
    arrays = [rng.uniform(0.5, 1.5, sizes[kind]).astype(np.float32) for kind in params]
    model = _one_node(op, shape, opset, *arrays, **attrs)
    feeds = {"x": rng.standard_normal(shape).astype(np.float32) * 3}
    expected = run_onnxruntime(ir.from_proto(ir.to_proto(model)), feeds)["y"]
    actual = get_framework("coreml").run_ir(model, feeds, ConvertOptions())["y"]
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_where_with_a_wider_cond_then_float16_pad_matches_onnxruntime() -> None:
    """Attention's function body: Where(mask, 0, -inf) broadcasts over the mask only (coremltools'
    select took its shape from a and b: a (1,) result the Pad after it read back wrongly), then a
    float16 constant Pad (its value must be float16 in MIL)."""
    nodes = [
        helper.make_node("Where", ["mask", "zero", "neg_inf"], ["bias"]),
        helper.make_node("Pad", ["bias", "pads", "fill", "axes"], ["padded"]),
        helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16),
        helper.make_node("Pad", ["x16", "pads", "fill16"], ["y16"]),
    ]
    graph = helper.make_graph(
        nodes,
        "masked",
        [
            helper.make_tensor_value_info("mask", TensorProto.BOOL, [2, 3]),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [3]),
        ],
        [
            helper.make_tensor_value_info("padded", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("y16", TensorProto.FLOAT16, None),
        ],
        [
            helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
            helper.make_tensor("neg_inf", TensorProto.FLOAT, [1], [-np.inf]),
            helper.make_tensor("pads", TensorProto.INT64, [2], [1, 2]),
            helper.make_tensor("axes", TensorProto.INT64, [1], [-1]),
            helper.make_tensor("fill", TensorProto.FLOAT, [], [-np.inf]),
            helper.make_tensor("fill16", TensorProto.FLOAT16, [], [np.float16(2.5)]),
        ],
    )
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    feeds = {
        "mask": np.array([[True, False, True], [False, False, True]]),
        "x": np.array([1.0, -2.0, 3.5], np.float32),
    }
    expected = run_onnxruntime(ir.from_proto(ir.to_proto(model)), feeds)
    actual = get_framework("coreml").run_ir(model, feeds, ConvertOptions())
    for name in ("padded", "y16"):
        assert actual[name].dtype == expected[name].dtype
        np.testing.assert_array_equal(actual[name], expected[name])


def test_conv_with_a_bias_given_at_run_time_matches_onnxruntime() -> None:
    """MIL's conv takes a compile-time bias only: a run-time one is added after the conv."""
    rng = np.random.default_rng(1)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])],
        "conv",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("w", TensorProto.FLOAT, [3, 2, 3, 3], rng.standard_normal(54))],
    )
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    feeds = {
        "x": rng.standard_normal((1, 2, 5, 5)).astype(np.float32),
        "b": np.array([0.5, -1.0, 2.0], np.float32),
    }
    expected = run_onnxruntime(ir.from_proto(ir.to_proto(model)), feeds)["y"]
    actual = get_framework("coreml").run_ir(model, feeds, ConvertOptions())["y"]
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("dtype", "onnx_type", "attrs"),
    [
        # uint8 is held as int32: pooled in float32 (exact) and cast back
        (np.uint8, TensorProto.UINT8, {"kernel_shape": [2, 2], "dilations": [1, 1]}),
        # float16 dilated: the -inf padding in float16 beside float16 x
        (
            np.float16,
            TensorProto.FLOAT16,
            {"kernel_shape": [2, 2], "dilations": [2, 2], "pads": [1, 1, 1, 1]},
        ),
    ],
)
def test_max_pool_on_other_types_matches_onnxruntime(
    dtype: Any, onnx_type: int, attrs: dict[str, Any]
) -> None:
    graph = helper.make_graph(
        [helper.make_node("MaxPool", ["x"], ["y"], **attrs)],
        "pool",
        [helper.make_tensor_value_info("x", onnx_type, [1, 2, 5, 5])],
        [helper.make_tensor_value_info("y", onnx_type, None)],
    )
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    rng = np.random.default_rng(2)
    feeds = {"x": rng.integers(0, 255, (1, 2, 5, 5)).astype(dtype)}
    expected = run_onnxruntime(ir.from_proto(ir.to_proto(model)), feeds)["y"]
    actual = get_framework("coreml").run_ir(model, feeds, ConvertOptions())["y"]
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)
