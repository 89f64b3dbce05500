"""Caffe2 ops imported to the IR: onnxruntime on the IR against the executor on the NetDef."""

from __future__ import annotations

import warnings

import numpy as np
import onnx_ir as ir
import pytest
from netdef_builders import compare, model, op, randn

from unframe.backends.caffe2.native import CAFFE2_DTYPES
from unframe.backends.caffe2.native.executor import run_net
from unframe.frontends.caffe2 import import_caffe2
from unframe.shared_ir.errors import BadInputError, UnsupportedOpsError

X = randn(1, 4, 7, 9)
W = randn(6, 4, 3, 3, seed=1)
B = randn(6, seed=2)


def _conv(**args: object) -> None:
    c2 = model(
        [op("Conv", ["x", "w", "b"], ["y"], **args)], {"w": W, "b": B}, {"x": [1, 4, 7, 9]}, ["y"]
    )
    compare(c2, {"x": X})


@pytest.mark.parametrize(
    "args",
    [
        {"kernel": 3},
        {"kernel_h": 3, "kernel_w": 3, "stride_h": 2, "stride_w": 1},
        {"kernels": [3, 3], "strides": [2, 2], "pads": [1, 0, 1, 2]},
        {"kernel": 3, "pad_t": 1, "pad_l": 2, "pad_b": 0, "pad_r": 1, "stride": 2},
        {"kernel": 3, "dilation": 2, "pad": 2},
        {"kernel": 3, "dilations": [1, 2], "pad": 1},
        {"kernel": 3, "stride": 2, "legacy_pad": 1},
        {"kernel": 3, "stride": 2, "legacy_pad": 2},
    ],
)
def test_conv_argument_spellings(args: dict[str, object]) -> None:
    _conv(**args)


def test_grouped_conv_without_bias() -> None:
    w = randn(8, 2, 3, 3, seed=3)
    c2 = model(
        [op("Conv", ["x", "w"], ["y"], kernel=3, group=2)], {"w": w}, {"x": [1, 4, 7, 9]}, ["y"]
    )
    compare(c2, {"x": X})


def test_conv_nhwc() -> None:
    w = np.moveaxis(W, 1, -1).copy()  # Caffe2's NHWC weights are (M, kH, kW, C)
    c2 = model(
        [op("Conv", ["x", "w", "b"], ["y"], kernel=3, pad=1, order="NHWC")],
        {"w": w, "b": B}, {"x": [1, 7, 9, 4]}, ["y"],
    )  # fmt: skip
    imported = compare(c2, {"x": np.moveaxis(X, 1, -1).copy()})
    assert "Transpose" in {n.op_type for n in imported.graph}


@pytest.mark.parametrize("op_type", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize(
    "args",
    [
        {"kernel": 2, "stride": 2},
        {"kernel": 3, "stride": 2, "pad": 1},
        {"kernel": 3, "stride": 2, "legacy_pad": 3},
        {"kernel": 3, "stride": 2, "pad": 1, "legacy_pad": 3},
        {"kernels": [2, 3], "strides": [1, 2]},
        {"global_pooling": 1},
    ],
)
def test_pooling(op_type: str, args: dict[str, object]) -> None:
    c2 = model([op(op_type, ["x"], ["y"], **args)], {}, {"x": [1, 4, 7, 9]}, ["y"])
    compare(c2, {"x": X})


def test_caffe_legacy_pooling_rounds_up() -> None:
    c2 = model(
        [op("MaxPool", ["x"], ["y"], kernel=2, stride=2, legacy_pad=3)],
        {},
        {"x": [1, 4, 7, 9]},
        ["y"],
    )
    imported = compare(c2, {"x": X})
    assert tuple(imported.graph.outputs[0].shape) == (
        1,
        4,
        4,
        5,
    )  # ceil((7-2)/2)+1, ceil((9-2)/2)+1


def test_in_place_blobs_become_ssa_values() -> None:
    scale, bias, mean, var = (
        randn(6, seed=4),
        randn(6, seed=5),
        randn(6, seed=6),
        np.abs(randn(6, seed=7)) + 0.5,
    )
    ops = [
        op("Conv", ["x", "w", "b"], ["c"], kernel=3, pad=1),
        op("SpatialBN", ["c", "s", "bb", "m", "v"], ["c"], is_test=1, epsilon=1e-3),
        op("Relu", ["c"], ["c"]),
        op("Sum", ["c", "c"], ["c"]),
    ]
    weights = {"w": W, "b": B, "s": scale, "bb": bias, "m": mean, "v": var}
    imported = compare(model(ops, weights, {"x": [1, 4, 7, 9]}, ["c"]), {"x": X})
    names = [v.name for n in imported.graph for v in n.outputs]
    assert len(names) == len(set(names))
    assert imported.graph.outputs[0].name == "c"


@pytest.mark.parametrize("transposed", [False, True])
def test_fc_with_axis(transposed: bool) -> None:
    x = randn(2, 3, 4, 5)
    w = randn(7, 20, seed=1)
    ops = [op("FCTransposed" if transposed else "FC", ["x", "w", "b"], ["y"], axis=2)]
    weights = {"w": w.T.copy() if transposed else w, "b": randn(7, seed=2)}
    imported = compare(model(ops, weights, {"x": [2, 3, 4, 5]}, ["y"]), {"x": x})
    assert tuple(imported.graph.outputs[0].shape) == (2, 3, 7)


def test_fc_weight_with_axis_w() -> None:
    x = randn(2, 12)
    ops = [op("FC", ["x", "w", "b"], ["y"], axis_w=1)]
    weights = {"w": randn(5, 3, 4, seed=1), "b": randn(5, seed=2)}
    compare(model(ops, weights, {"x": [2, 12]}, ["y"]), {"x": x})


@pytest.mark.parametrize("op_type", ["Add", "Sub", "Mul", "Div"])
def test_legacy_broadcast_with_axis(op_type: str) -> None:
    ops = [op(op_type, ["x", "c"], ["y"], broadcast=1, axis=1)]
    compare(model(ops, {"c": np.abs(randn(4)) + 1}, {"x": [1, 4, 7, 9]}, ["y"]), {"x": X})


def test_legacy_broadcast_of_a_run_time_blob() -> None:
    ops = [
        op("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0),
        op("Mul", ["x", "m"], ["y"], broadcast=1, axis=0),
    ]
    compare(model(ops, {}, {"x": [1, 4, 7, 9]}, ["y"]), {"x": X})


def test_concat_split_info_and_reshape_old_shape() -> None:
    ops = [
        op("Concat", ["x", "x2"], ["cat", "info"], axis=1),
        op("Reshape", ["cat"], ["flat", "old"], shape=[1, -1]),
    ]
    c2 = model(ops, {"x2": randn(1, 2, 7, 9, seed=3)}, {"x": [1, 4, 7, 9]}, ["flat", "info", "old"])
    imported = compare(c2, {"x": X})
    assert [v.dtype.name for v in imported.graph.outputs[1:]] == ["INT32", "INT64"]


@pytest.mark.parametrize("axis", [1, 3])
def test_softmax_coerces_to_2d(axis: int) -> None:
    compare(
        model([op("Softmax", ["x"], ["y"], axis=axis)], {}, {"x": [1, 4, 7, 9]}, ["y"]), {"x": X}
    )


def test_many_ops_in_one_net() -> None:
    slope = np.abs(randn(4, seed=8))
    ops = [
        op("Dropout", ["x"], ["d"], ratio=0.3, is_test=1),
        op("PRelu", ["d", "slope"], ["p"]),
        op("LRN", ["p"], ["l"], size=3, alpha=1e-3, beta=0.75, bias=2.0),
        op("ChannelShuffle", ["l"], ["s"], group=2),
        op("Sigmoid", ["s"], ["g"]),
        op("Tanh", ["s"], ["t"]),
        op("Mul", ["g", "t"], ["m"]),
        op("Clip", ["m"], ["c"], min=-0.2, max=0.3),
        op("Transpose", ["c"], ["tr"], axes=[0, 2, 3, 1]),
        op("Flatten", ["tr"], ["f"], axis=1),
        op("ExpandDims", ["f"], ["e"], dims=[0]),
        op("Squeeze", ["e"], ["q"], dims=[0]),
        op("Cast", ["q"], ["cast"], to=10),
    ]
    compare(model(ops, {"slope": slope}, {"x": [1, 4, 7, 9]}, ["cast", "c"]), {"x": X})


def test_matmul_and_batch_matmul() -> None:
    a, b = randn(2, 3, 4), randn(2, 5, 4, seed=1)
    ops = [
        op("BatchMatMul", ["a", "b"], ["bmm"], trans_b=1),
        op("MatMul", ["a2", "w"], ["mm"], trans_b=1),
    ]
    c2 = model(
        ops,
        {"w": randn(6, 4, seed=2)},
        {"a": [2, 3, 4], "b": [2, 5, 4], "a2": [3, 4]},
        ["bmm", "mm"],
    )
    compare(c2, {"a": a, "b": b, "a2": randn(3, 4, seed=3)})


def test_explicit_input_shape_overrides_value_info() -> None:
    from unframe.converters.framework import ConvertOptions
    from unframe.shared_ir.inputs import InputSpec

    c2 = model([op("Relu", ["x"], ["y"])], {}, {"x": [1, 4, 7, 9]}, ["y"])
    plain = import_caffe2(c2)
    assert tuple(plain.graph.inputs[0].shape) == (1, 4, 7, 9)
    override = import_caffe2(c2, ConvertOptions(inputs={"x": InputSpec("x", (2, 4, 5, 5))}))
    assert tuple(override.graph.inputs[0].shape) == (2, 4, 5, 5)


@pytest.mark.parametrize("op_type", ["MaxPool", "AveragePool"])
def test_pooling_nhwc(op_type: str) -> None:
    c2 = model(
        [op(op_type, ["x"], ["y"], kernel=3, stride=2, pad=1, order="NHWC")],
        {},
        {"x": [1, 7, 9, 4]},
        ["y"],
    )
    compare(c2, {"x": np.moveaxis(X, 1, -1).copy()})


def test_spatial_bn_nhwc() -> None:
    stats = [randn(4, seed=s) for s in range(3)] + [np.abs(randn(4, seed=9)) + 0.5]
    ops = [op("SpatialBN", ["x", "s", "b", "m", "v"], ["y"], is_test=1, order="NHWC")]
    weights = dict(zip(["s", "b", "m", "v"], stats, strict=True))
    compare(model(ops, weights, {"x": [1, 7, 9, 4]}, ["y"]), {"x": np.moveaxis(X, 1, -1).copy()})


def test_conv_transpose_with_adjs() -> None:
    w = randn(4, 3, 3, 3, seed=5)
    ops = [op("ConvTranspose", ["x", "w", "b"], ["y"], kernel=3, stride=2, pad=1, adj=1)]
    compare(model(ops, {"w": w, "b": randn(3, seed=6)}, {"x": [1, 4, 7, 9]}, ["y"]), {"x": X})


def test_shape_ops() -> None:
    ops = [
        op("Split", ["x"], ["a", "b"], axis=1, split=[1, 3]),
        op("Slice", ["b"], ["s"], starts=[0, 1, 2, 0], ends=[-1, -1, 6, -2]),
        op("ResizeNearest", ["s"], ["r"], height_scale=2.0, width_scale=2.0),
        op("PadImage", ["r"], ["p"], pad_t=1, pad_l=2, pad_b=0, pad_r=1, mode="reflect"),
        op("Scale", ["a"], ["sc"], scale=3.0),
        op("ReduceMax", ["sc"], ["mx"], axes=[2, 3], keepdims=0),
        op("ArgMax", ["x"], ["am"], axis=1, keepdims=0),
    ]
    compare(model(ops, {}, {"x": [1, 4, 7, 9]}, ["p", "mx", "am"]), {"x": X})


def test_normalization_and_power_ops() -> None:
    ops = [
        op("GroupNorm", ["x", "g", "b"], ["gn"], group=2, epsilon=1e-4),
        op("Normalize", ["x"], ["l2"], axis=1),
        op("NormalizeL1", ["x"], ["l1"], axis=3),
        op("Abs", ["x"], ["a"]),
        op("Pow", ["a"], ["p"], exponent=1.5),
        op("Cube", ["x"], ["c"]),
        op("Rsqrt", ["a"], ["r"]),
        op("Log1p", ["a"], ["lp"]),
    ]
    weights = {"g": randn(4, seed=1), "b": randn(4, seed=2)}
    c2 = model(ops, weights, {"x": [1, 4, 7, 9]}, ["gn", "l2", "l1", "p", "c", "r", "lp"])
    compare(c2, {"x": X}, rtol=2e-4)


def test_integer_mod_follows_the_dividend_sign() -> None:
    x = np.array([[-7, -3, 0, 3, 7]], dtype=np.int64)
    c2 = model([op("Mod", ["x"], ["y"], divisor=3)], {}, {"x": [1, 5]}, ["y"])
    c2.value_info = {"x": (7, [1, 5])}
    imported = compare(c2, {"x": x})
    assert imported.graph.outputs[0].dtype.name == "INT64"


def _typed(c2: object, feeds: dict[str, np.ndarray]) -> None:
    """value_info for each fed blob with its own element type and shape."""
    c2.value_info = {  # type: ignore[attr-defined]
        name: (CAFFE2_DTYPES[ir.DataType.from_numpy(v.dtype)], list(v.shape))
        for name, v in feeds.items()
    }


def test_slice_with_run_time_starts_and_ends() -> None:
    # Caffe2's Slice documentation: ends count from dim + 1 when negative (-1 is the end).
    feeds = {
        "x": np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.float32),
        "starts": np.array([0, 1], dtype=np.int64),
        "ends": np.array([-1, 3], dtype=np.int64),
    }
    c2 = model([op("Slice", ["x", "starts", "ends"], ["y"])], {}, {}, ["y"])
    _typed(c2, feeds)
    compare(c2, feeds)
    got = run_net(c2.predict_net, c2.init_net, feeds)["y"]
    np.testing.assert_array_equal(got, [[2, 3], [6, 7]])


@pytest.mark.parametrize(("axis", "want"), [(1, [[1, 2, 1, 2], [3, 4, 3, 4]]),
                                            (-2, [[1, 2], [3, 4], [1, 2], [3, 4]])])  # fmt: skip
def test_tile_with_run_time_tiles_and_axis(axis: int, want: list[list[int]]) -> None:
    feeds = {
        "x": np.array([[1, 2], [3, 4]], dtype=np.float32),
        "tiles": np.array([2], dtype=np.int64),
        "axis": np.array([axis], dtype=np.int32),
    }
    c2 = model([op("Tile", ["x", "tiles", "axis"], ["y"])], {}, {}, ["y"])
    _typed(c2, feeds)
    compare(c2, feeds)
    np.testing.assert_array_equal(run_net(c2.predict_net, c2.init_net, feeds)["y"], want)


def test_boolean_mask_rows_and_positions() -> None:
    # Caffe2's BooleanMask documentation: the kept values and their positions.
    feeds = {
        "data": np.array([1, 2, 3, 4, 5, 6], dtype=np.float32),
        "mask": np.array([True, False, False, True, True, False]),
    }
    c2 = model([op("BooleanMask", ["data", "mask"], ["masked", "indices"])], {}, {}, [])
    c2.predict_net.external_output.extend(["masked", "indices"])
    _typed(c2, feeds)
    compare(c2, feeds)
    outputs = run_net(c2.predict_net, c2.init_net, feeds)
    np.testing.assert_array_equal(outputs["masked"], [1, 4, 5])
    np.testing.assert_array_equal(outputs["indices"], [0, 3, 4])


def test_split_with_run_time_sizes() -> None:
    feeds = {
        "x": np.arange(10, dtype=np.float32).reshape(2, 5),
        "split": np.array([2, 3], dtype=np.int32),
    }
    c2 = model([op("Split", ["x", "split"], ["a", "b"], axis=1)], {}, {}, ["a", "b"])
    _typed(c2, feeds)
    compare(c2, feeds)
    outputs = run_net(c2.predict_net, c2.init_net, feeds)
    np.testing.assert_array_equal(outputs["b"], [[2, 3, 4], [7, 8, 9]])


# Caffe2's Caffe translator (caffe_translator.py, TranslatePool) writes every pooling layer with
# kernel, stride, pad and legacy_pad=CAFFE_LEGACY_POOLING, global_pooling=1 included; Caffe2's
# ConvPoolOpBase accepts them there while pads are 0 and strides 1.
@pytest.mark.parametrize("op_type", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize(
    "args",
    [
        {"kernel": 0, "stride": 1, "pad": 0, "legacy_pad": 3},
        {"kernel": 7, "stride": 1, "pad": 0, "legacy_pad": 3},
        {"kernel_h": 3, "kernel_w": 5, "pads": [0, 0, 0, 0], "strides": [1, 1]},
    ],
)
def test_global_pooling_with_the_caffe_translators_neutral_arguments(
    op_type: str, args: dict[str, object]
) -> None:
    c2 = model(
        [op(op_type, ["x"], ["y"], global_pooling=1, order="NCHW", **args)],
        {}, {"x": [1, 4, 7, 9]}, ["y"],
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Caffe2 reads every one of them: nothing is ignored
        imported = compare(c2, {"x": X})
    assert [n.op_type for n in imported.graph] == [f"Global{op_type}"]


@pytest.mark.parametrize(
    ("args", "named"),
    [({"pad": 1}, "pads \\[1, 1, 1, 1\\]"), ({"stride": 2}, "strides \\[2, 2\\]"),
     ({"dilation": 2}, "dilations \\[2, 2\\]")],
)  # fmt: skip
def test_global_pooling_refuses_what_caffe2_refused(args: dict[str, object], named: str) -> None:
    c2 = model(
        [op("MaxPool", ["x"], ["y"], global_pooling=1, **args)], {}, {"x": [1, 4, 7, 9]}, ["y"]
    )
    with pytest.raises(BadInputError, match=f"op 0 \\(MaxPool\\): global_pooling with .*{named}"):
        import_caffe2(c2)
    # Caffe2's own executor (here, unframe's) refuses the same net.
    with pytest.raises(BadInputError, match="global_pooling"):
        run_net(c2.predict_net, c2.init_net, {"x": X})


def test_legacy_valid_padding_with_explicit_pads_is_refused_as_caffe2_did() -> None:
    c2 = model([op("Conv", ["x", "w"], ["y"], kernel=3, pad=1, legacy_pad=1)], {"w": W},
               {"x": [1, 4, 7, 9]}, ["y"])  # fmt: skip
    with pytest.raises(BadInputError, match="legacy_pad VALID or SAME cannot be combined"):
        import_caffe2(c2)


def test_an_argument_caffe2_reads_and_the_importer_does_not_is_refused() -> None:
    # ConvPoolOpBase reads global_pooling for Conv too; a non-neutral value is not imported.
    c2 = model([op("Conv", ["x", "w"], ["y"], kernel=3, global_pooling=1)], {"w": W},
               {"x": [1, 4, 7, 9]}, ["y"])  # fmt: skip
    with pytest.raises(UnsupportedOpsError) as caught:
        import_caffe2(c2)
    ((refused,),) = [caught.value.ops]
    assert refused.op_type == "Conv" and "'global_pooling'" in refused.reason
    # Its neutral value changes nothing, and is accepted without a word.
    c2.predict_net.op[0].arg[-1].i = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compare(c2, {"x": X})


def test_conv_transpose_ignores_dilations_as_caffe2_does() -> None:
    # ConvTransposeUnpoolBase reads no dilation: Caffe2 computed the undilated transpose.
    w = randn(4, 3, 3, 3, seed=8)
    c2 = model([op("ConvTranspose", ["x", "w"], ["y"], kernel=3, stride=2, dilation=2)],
               {"w": w}, {"x": [1, 4, 7, 9]}, ["y"])  # fmt: skip
    with pytest.warns(UserWarning, match="ignored argument\\(s\\) 'dilation'"):
        compare(c2, {"x": X})
