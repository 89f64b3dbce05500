"""Parameters fed as graph inputs (starts, axes, pads, sizes...) stay inputs of the exported net.

onnx's node tests feed them as graph inputs. Each net must compute with them at run time: it is
run on the executor with other parameter values than the test's (which a net specialized to the
test's values would get wrong), and it is imported back into the IR and run on onnxruntime, both
against onnx's expected outputs.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx.reference import ReferenceEvaluator

from unframe.backends.caffe2.driver import export_model
from unframe.backends.caffe2.native.executor import run_net
from unframe.backends.caffe2.native.netdef import Caffe2Model
from unframe.converters import conformance
from unframe.converters.framework import ConvertOptions
from unframe.frontends.caffe2 import import_caffe2
from unframe.shared_ir.errors import BadInputError, UnsupportedOpsError
from unframe.shared_ir.inputs import InputSpec
from unframe.shared_ir.runner import run_reference

#: One node test per new run-time form.
ROUND_TRIP = [
    "test_slice", "test_slice_neg_steps", "test_slice_negative_axes", "test_slice_default_axes",
    "test_reduce_sum_do_not_keepdims_example", "test_reduce_sum_empty_axes_input_noop",
    "test_reduce_max_empty_set", "test_reduce_sum_empty_set",
    "test_reduce_log_sum_exp_do_not_keepdims_random", "test_reduce_prod_do_not_keepdims_example",
    "test_reduce_l2_keep_dims_example", "test_constant_pad", "test_constant_pad_axes",
    "test_reflect_pad", "test_edge_pad", "test_wrap_pad", "test_center_crop_pad_crop_and_pad",
    "test_center_crop_pad_crop_expanded", "test_cumsum_2d_negative_axis",
    "test_cumprod_1d_reverse_exclusive", "test_onehot_with_axis", "test_hannwindow",
    "test_blackmanwindow_symmetric", "test_hammingwindow", "test_tile",
    "test_split_variable_parts_2d_opset18", "test_squeeze_negative_axes",
    "test_unsqueeze_unsorted_axes", "test_top_k_smallest", "test_top_k",
    # Ops built from others, whose nets the frontend must read back as well:
    "test_nonzero_example", "test_det_nd", "test_matmulinteger", "test_convinteger_with_padding",
    "test_maxpool_2d_dilations", "test_maxpool_with_argmax_2d_precomputed_strides",
    "test_upsample_nearest", "test_resize_upsample_scales_nearest_axes_3_2",
    "test_resize_downsample_scales_nearest", "test_melweightmatrix", "test_gru_bidirectional",
    "test_lstm_with_peepholes", "test_simple_rnn_batchwise", "test_lstm_batchwise",
    "test_col2im_pads", "test_col2im_5d", "test_col2im_dilations", "test_qlinearconv",
    "test_stft", "test_stft_with_window", "test_tensorscatter_circular", "test_tensorscatter_3d",
    "test_resize_upsample_scales_linear_half_pixel_symmetric",
    "test_resize_downsample_scales_linear_align_corners",
    "test_reshape_allowzero_reordered", "test_resize_upsample_sizes_nearest",
    "test_resize_downsample_sizes_linear_pytorch_half_pixel", "test_resize_upsample_sizes_cubic",
    "test_resize_downsample_sizes_cubic_antialias", "test_resize_upsample_scales_cubic",
    "test_resize_upsample_sizes_nearest_not_larger",
]  # fmt: skip


def _case(name: str) -> object:
    (case,) = conformance.collect_node_tests(name_pattern=f"^{name}$")
    return case


def _exported(case: object) -> tuple[Caffe2Model, list[str], list[str]]:
    model = case.model  # type: ignore[attr-defined]
    nets = export_model(ir.from_proto(model))
    inputs = [value.name for value in model.graph.input]
    outputs = [value.name for value in model.graph.output]
    return Caffe2Model(nets.predict_net, nets.init_net, nets.value_info), inputs, outputs


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_imported_back_matches_onnx(name: str) -> None:
    case = _case(name)
    c2, inputs, outputs = _exported(case)
    # Every graph input stays an input of the net: nothing is bound at export.
    assert set(inputs) <= set(c2.predict_net.external_input)
    feeds_list, expected = case.data_sets[0]  # type: ignore[attr-defined]
    feeds = {name: np.asarray(value) for name, value in zip(inputs, feeds_list, strict=True)}
    specs = {k: InputSpec(k, tuple(v.shape), v.dtype) for k, v in feeds.items()}
    imported = import_caffe2(c2, ConvertOptions(inputs=specs))
    result = run_reference(imported, feeds)
    assert result.engine == "onnxruntime", result.fallback_reason
    for output, want in zip(outputs, expected, strict=True):
        got = result.outputs[output]
        np.testing.assert_allclose(got, want, rtol=case.rtol, atol=case.atol, err_msg=output)  # type: ignore[attr-defined]


def _run(case_name: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    c2, _, outputs = _exported(_case(case_name))
    results = run_net(c2.predict_net, c2.init_net, feeds)
    return [results[name] for name in outputs]


def test_slice_follows_the_fed_starts() -> None:
    # test_slice's net, fed other starts, ends, axes and steps than the test's own.
    x = np.arange(20 * 10 * 5, dtype=np.float32).reshape(20, 10, 5)
    starts, ends = np.array([-1, 1], np.int64), np.array([-8, 1000], np.int64)
    axes, steps = np.array([0, 2], np.int64), np.array([-3, 2], np.int64)
    feeds = {"x": x, "starts": starts, "ends": ends, "axes": axes, "steps": steps}
    (got,) = _run("test_slice", feeds)
    np.testing.assert_array_equal(got, x[-1:-8:-3, :, 1:1000:2])


def test_reduce_sum_follows_the_fed_axes() -> None:
    # keepdims=0: the axes decide the output's rank and shape at run time.
    data = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    for axes in ([0, 2], [-2], [], [1, 0, 2]):
        feeds = {"data": data, "axes": np.array(axes, dtype=np.int64)}
        (got,) = _run("test_reduce_sum_do_not_keepdims_example", feeds)
        want = np.sum(data, axis=tuple(axes) if axes else None)
        np.testing.assert_allclose(got, want)


def test_pad_follows_the_fed_pads() -> None:
    x = np.arange(60, dtype=np.float32).reshape(1, 3, 4, 5)
    pads = np.array([0, 1, -1, 0, 0, 0, 2, 1], dtype=np.int64)  # channels +1, rows -1 +2...
    feeds = {"x": x, "pads": pads, "value": np.array(9.5, dtype=np.float32)}
    (got,) = _run("test_constant_pad", feeds)
    want = np.pad(x[:, :, 1:], ((0, 0), (1, 0), (0, 2), (0, 1)), constant_values=9.5)
    np.testing.assert_array_equal(got, want)


def test_cumsum_follows_the_fed_axis() -> None:
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    for axis in (0, 1, -2):
        (got,) = _run("test_cumsum_2d_axis_0", {"x": x, "axis": np.array(axis, dtype=np.int32)})
        np.testing.assert_array_equal(got, np.cumsum(x, axis=axis))


def test_hann_window_follows_the_fed_size() -> None:
    # Hann: sin^2(pi n / N), N the size (periodic); 4 points: 0, 1/2, 1, 1/2.
    (got,) = _run("test_hannwindow", {"x": np.array(4, dtype=np.int32)})
    np.testing.assert_allclose(got, [0.0, 0.5, 1.0, 0.5], atol=1e-6)


def test_tile_follows_the_fed_repeats() -> None:
    x = np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5)
    repeats = np.array([1, 2, 1, 3], dtype=np.int64)
    (got,) = _run("test_tile", {"x": x, "y": repeats})
    np.testing.assert_array_equal(got, np.tile(x, (1, 2, 1, 3)))


def test_unsqueeze_follows_the_fed_axes() -> None:
    x = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    (got,) = _run("test_unsqueeze_unsorted_axes", {"x": x, "axes": np.array([-1, 0, 2])})
    assert got.shape == (1, 3, 1, 4, 5, 1)
    np.testing.assert_array_equal(got.reshape(-1), x.reshape(-1))


def test_top_k_follows_the_fed_k() -> None:
    x = np.array([[0, 1, 2, 3], [7, 6, 5, 4], [8, 11, 10, 9]], dtype=np.float32)
    values, indices = _run("test_top_k", {"x": x, "k": np.array([2], dtype=np.int64)})
    np.testing.assert_array_equal(values, [[3, 2], [7, 6], [11, 10]])
    np.testing.assert_array_equal(indices, [[3, 2], [0, 1], [1, 2]])


def test_resize_follows_the_fed_scales() -> None:
    # half_pixel + round_prefer_floor, scale 3 on a row of 2: (i + 0.5) / 3 - 0.5 for i < 6 is
    # -1/3, 0, 1/3, 2/3, 1, 4/3, which round (halves down) and clamp to 0, 0, 0, 1, 1, 1.
    x = np.array([[[[1, 2], [3, 4]]]], dtype=np.float32)
    scales = np.array([1, 1, 1, 3], dtype=np.float32)
    (got,) = _run("test_resize_upsample_scales_nearest", {"X": x, "scales": scales})
    np.testing.assert_array_equal(got, [[[[1, 1, 1, 2, 2, 2], [3, 3, 3, 4, 4, 4]]]])


def test_mel_weight_matrix_follows_the_fed_sizes() -> None:
    from onnx.reference import ReferenceEvaluator

    case = _case("test_melweightmatrix")
    feeds = {
        "num_mel_bins": np.array(5, dtype=np.int32), "dft_length": np.array(32, dtype=np.int32),
        "sample_rate": np.array(8000, dtype=np.int32),
        "lower_edge_hertz": np.array(100, dtype=np.float32),
        "upper_edge_hertz": np.array(3000, dtype=np.float32),
    }  # fmt: skip
    (want,) = ReferenceEvaluator(case.model).run(None, feeds)  # type: ignore[attr-defined]
    (got,) = _run("test_melweightmatrix", feeds)
    assert got.shape == (17, 5)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_col2im_follows_the_fed_shapes() -> None:
    from onnx.reference import ReferenceEvaluator

    case = _case("test_col2im")
    # The same 5 x 5 columns read as one 5 x 1 block per position of a 5 x 5 image.
    feeds = {
        "input": np.arange(25, dtype=np.float32).reshape(1, 5, 5),
        "image_shape": np.array([5, 5], dtype=np.int64),
        "block_shape": np.array([5, 1], dtype=np.int64),
    }
    (want,) = ReferenceEvaluator(case.model).run(None, feeds)  # type: ignore[attr-defined]
    (got,) = _run("test_col2im", feeds)
    np.testing.assert_allclose(got, want)


def test_stft_follows_the_fed_step_and_length() -> None:
    from onnx.reference import ReferenceEvaluator

    case = _case("test_stft")
    signal = np.random.default_rng(3).standard_normal((1, 128, 1)).astype(np.float32)
    feeds = {
        "signal": signal,
        "frame_step": np.array(10, dtype=np.int64),
        "frame_length": np.array(20, dtype=np.int64),
    }
    (want,) = ReferenceEvaluator(case.model).run(None, feeds)  # type: ignore[attr-defined]
    (got,) = _run("test_stft", feeds)
    assert got.shape == (1, 11, 11, 2)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _reference(case_name: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """onnx's reference run of a node test's model."""
    return list(ReferenceEvaluator(_case(case_name).model).run(None, feeds))  # type: ignore[attr-defined]


def _single_node_model(
    node: onnx.NodeProto, inputs: list[onnx.ValueInfoProto], opset: int
) -> onnx.ModelProto:
    """One node, its output of unknown shape (the net cannot lean on a declared one)."""
    output = onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None)
    graph = onnx.helper.make_graph([node], "runtime_parameter", inputs, [output])
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])


def _run_model(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    nets = export_model(ir.from_proto(model))
    return run_net(nets.predict_net, nets.init_net, feeds)[model.graph.output[0].name]


def _refusal(model: onnx.ModelProto) -> str:
    """The reason export gives for refusing the model's one node."""
    with pytest.raises(UnsupportedOpsError) as caught:
        export_model(ir.from_proto(model))
    (op,) = caught.value.ops
    return op.reason


def test_reshape_allowzero_follows_the_fed_shape() -> None:
    # The test declares the output (3, 4, 0) of its own shape [3, 4, 0]; with allowzero=1 a 0 is
    # a real zero dim (the input is then empty too), and the shape may hold none.
    fed = [
        ((0, 3, 4), [0, 12, 5]), ((0, 3, 4), [2, 0, 0]), ((2, 3, 4), [4, -1, 2]),
        ((2, 3, 4), [24]), ((1, 1, 1), []),
    ]  # fmt: skip
    for dims, shape in fed:
        data = np.arange(np.prod(dims), dtype=np.float32).reshape(dims)
        feeds = {"data": data, "shape": np.array(shape, dtype=np.int64)}
        (want,) = _reference("test_reshape_allowzero_reordered", feeds)
        (got,) = _run("test_reshape_allowzero_reordered", feeds)
        assert got.shape == want.shape, shape
        np.testing.assert_array_equal(got, want)


def test_reshape_allowzero_with_unknown_shapes() -> None:
    # Neither the input's dims nor the output's are declared; onnxruntime is the oracle.
    import onnxruntime

    node = onnx.helper.make_node("Reshape", ["x", "shape"], ["y"], allowzero=1)
    model = _single_node_model(node, [
        onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["a", "b"]),
        onnx.helper.make_tensor_value_info("shape", onnx.TensorProto.INT64, [3]),
    ], 14)  # fmt: skip
    session = onnxruntime.InferenceSession(model.SerializeToString())
    for dims, shape in (((0, 6), [3, 0, 2]), ((4, 6), [2, -1, 3]), ((4, 6), [1, 24, 1])):
        feeds = {"x": np.ones(dims, dtype=np.float32), "shape": np.array(shape, dtype=np.int64)}
        (want,) = session.run(None, feeds)
        got = _run_model(model, feeds)
        assert got.shape == want.shape, shape
        np.testing.assert_array_equal(got, want)


def test_max_unpool_follows_the_fed_output_shape() -> None:
    # The test declares the output (1, 1, 5, 5) of its own output_shape; the unpooled 4 x 4
    # values keep their places and the rest of each axis is zeros.
    x = np.array([[[[5, 6], [7, 8]]]], dtype=np.float32)
    indices = np.array([[[[5, 7], [13, 15]]]], dtype=np.int64)
    for output_shape in ([1, 1, 4, 4], [1, 1, 4, 7], [1, 1, 6, 5], [2, 3, 4, 4]):
        feeds = {"xT": x, "xI": indices, "output_shape": np.array(output_shape, dtype=np.int64)}
        (want,) = _reference("test_maxunpool_export_with_output_shape", feeds)
        (got,) = _run("test_maxunpool_export_with_output_shape", feeds)
        assert got.shape == tuple(output_shape)
        np.testing.assert_array_equal(got, want)


def test_max_unpool_rejects_a_fed_output_shape_too_small() -> None:
    # As onnx's reference does: 3 rows cannot hold the 4 unpooled ones.
    x = np.array([[[[5, 6], [7, 8]]]], dtype=np.float32)
    indices = np.array([[[[5, 7], [13, 15]]]], dtype=np.int64)
    feeds = {"xT": x, "xI": indices, "output_shape": np.array([1, 1, 3, 4], dtype=np.int64)}
    with pytest.raises(ValueError):
        _reference("test_maxunpool_export_with_output_shape", feeds)
    with pytest.raises(BadInputError, match="out of range"):
        _run("test_maxunpool_export_with_output_shape", feeds)


#: Resize tests with run-time sizes, fed other sizes than their own.
RESIZE_SIZES = [
    ("test_resize_upsample_sizes_nearest", [1, 1, 3, 5]),
    ("test_resize_downsample_sizes_nearest", [1, 1, 3, 2]),
    ("test_resize_upsample_sizes_nearest_axes_3_2", [5, 3]),
    ("test_resize_upsample_sizes_nearest_floor_align_corners", [1, 1, 5, 1]),
    ("test_resize_upsample_sizes_nearest_ceil_half_pixel", [1, 1, 3, 7]),
    ("test_resize_upsample_sizes_nearest_round_prefer_ceil_asymmetric", [1, 1, 6, 3]),
    ("test_resize_downsample_sizes_linear_pytorch_half_pixel", [1, 1, 1, 6]),
    ("test_resize_downsample_sizes_linear_antialias", [1, 1, 2, 3]),
    ("test_resize_upsample_sizes_cubic", [1, 1, 5, 3]),
    ("test_resize_downsample_sizes_cubic", [1, 1, 4, 2]),
    ("test_resize_downsample_sizes_cubic_antialias", [1, 1, 1, 3]),
    # The kept scale is the smallest (largest) of 5 / 2 and 3 / 2; sizes are rounded half up.
    ("test_resize_upsample_sizes_nearest_not_larger", [5, 3]),
    ("test_resize_upsample_sizes_nearest_not_smaller", [5, 3]),
    ("test_resize_downsample_sizes_nearest_not_larger", [1, 3]),
]


@pytest.mark.parametrize(("name", "sizes"), RESIZE_SIZES, ids=[n for n, _ in RESIZE_SIZES])
def test_resize_follows_the_fed_sizes(name: str, sizes: list[int]) -> None:
    x_name, sizes_name = (value.name for value in _case(name).model.graph.input)  # type: ignore[attr-defined]
    (x, _), _ = _case(name).data_sets[0]  # type: ignore[attr-defined]
    x = np.random.default_rng(5).standard_normal(x.shape).astype(np.float32)
    feeds = {x_name: x, sizes_name: np.array(sizes, dtype=np.int64)}
    (want,) = _reference(name, feeds)
    (got,) = _run(name, feeds)
    assert got.shape == want.shape and got.dtype == want.dtype
    # onnx's reference takes cubic coefficients in float32 (its cubic_coeff_a is a float32
    # scalar), the net in double: they differ by about one float32 rounding.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 if "cubic" in name else 1e-6)


def test_resize_refuses_wide_antialiasing_at_run_time() -> None:
    # Antialiasing a 40-wide axis at an unknown scale reads up to 80 taps per output position.
    node = onnx.helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear",
                                 antialias=1)  # fmt: skip
    model = _single_node_model(node, [
        onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 40, 40]),
        onnx.helper.make_tensor_value_info("sizes", onnx.TensorProto.INT64, [4]),
    ], 19)  # fmt: skip
    assert "antialiasing an axis of 40" in _refusal(model)


def test_resize_cubic_follows_the_fed_scales() -> None:
    x = np.random.default_rng(6).standard_normal((1, 1, 4, 4)).astype(np.float32)
    for name in ("test_resize_upsample_scales_cubic_A_n0p5_exclude_outside",
                 "test_resize_downsample_scales_cubic_antialias"):  # fmt: skip
        feeds = {"X": x, "scales": np.array([1, 1, 0.6, 1.7], dtype=np.float32)}
        (want,) = _reference(name, feeds)
        (got,) = _run(name, feeds)
        assert got.shape == want.shape == (1, 1, 2, 6)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_resize_sizes_the_output_from_scales_in_double() -> None:
    # float32(0.7) * 10 is 6.99999988 (6 positions) in double, as onnx computes it, but rounds
    # to 7.0 in float32.
    node = onnx.helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear")
    model = _single_node_model(node, [
        onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 1, 10]),
        onnx.helper.make_tensor_value_info("scales", onnx.TensorProto.FLOAT, [4]),
    ], 19)  # fmt: skip
    feeds = {
        "x": np.arange(10, dtype=np.float32).reshape(1, 1, 1, 10),
        "scales": np.array([1, 1, 1, 0.7], dtype=np.float32),
    }
    (want,) = ReferenceEvaluator(model).run(None, feeds)
    got = _run_model(model, feeds)
    assert got.shape == want.shape == (1, 1, 1, 6)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
