"""NN layers, shape ops and reductions against formulas written out in the tests."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from unframe.shared_ir.errors import BadInputError, UnsupportedError

Run1 = Callable[..., np.ndarray]
RunOp = Callable[..., list[np.ndarray]]
F32 = np.float32


def _rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(F32)


def test_fc_by_hand(run1: Run1) -> None:
    x = np.array([[1, 2, 3]], dtype=F32)
    w = np.array([[1, 0, 0], [0, 1, 1]], dtype=F32)  # N x K
    b = np.array([10, 20], dtype=F32)
    assert run1("FC", x, w, b).tolist() == [[11, 25]]
    assert run1("FCTransposed", x, w.T.copy(), b).tolist() == [[11, 25]]
    # axis=2: (2, 3, 2, 2) -> 6 rows of K=4, output (2, 3, N).
    x4 = _rand(2, 3, 2, 2)
    w4 = _rand(5, 4, seed=1)
    y = run1("FC", x4, w4, np.zeros(5, F32), axis=2)
    assert y.shape == (2, 3, 5)
    np.testing.assert_allclose(y[1, 2], w4 @ x4[1, 2].reshape(4), rtol=1e-5)
    # axis=1 flattens CHW, as FC after a conv does.
    w5 = _rand(5, 12, seed=2)
    np.testing.assert_allclose(
        run1("FC", x4, w5, np.zeros(5, F32)), x4.reshape(2, 12) @ w5.T, rtol=1e-5, atol=1e-6
    )
    with pytest.raises(BadInputError, match="does not fit"):
        run1("FC", x4, w4, np.zeros(5, F32))


def test_spatial_bn(run1: Run1) -> None:
    x = _rand(2, 3, 4, 4)
    scale, bias = np.array([1, 2, 3], F32), np.array([0, 1, -1], F32)
    mean, var = np.array([0.5, 0, -0.5], F32), np.array([1, 4, 0.25], F32)
    y = run1("SpatialBN", x, scale, bias, mean, var, is_test=1, epsilon=1e-3)
    c = 1
    expected = (x[:, c] - mean[c]) / math.sqrt(var[c] + 1e-3) * scale[c] + bias[c]
    np.testing.assert_allclose(y[:, c], expected, rtol=1e-5)
    nhwc = run1(
        "SpatialBN", x.transpose(0, 2, 3, 1), scale, bias, mean, var, is_test=1, epsilon=1e-3,
        order="NHWC",
    )  # fmt: skip
    np.testing.assert_allclose(nhwc, y.transpose(0, 2, 3, 1), rtol=1e-6)
    with pytest.raises(UnsupportedError, match="is_test"):
        run1("SpatialBN", x, scale, bias, mean, var)


def test_instance_layer_group_norm(run_op: RunOp) -> None:
    x = _rand(2, 4, 3, 3)
    gamma, beta = np.array([1, 2, 3, 4], F32), np.array([0, 1, 0, -1], F32)
    y, mean, inv_std = run_op("InstanceNorm", x, gamma, beta, num_outputs=3, epsilon=1e-5)
    sample = x[1, 2]
    expected = (sample - sample.mean()) / math.sqrt(sample.var() + 1e-5) * 3
    np.testing.assert_allclose(y[1, 2], expected, rtol=1e-4, atol=1e-5)
    assert mean.shape == (2, 4) and mean[1, 2] == pytest.approx(sample.mean(), abs=1e-6)
    assert inv_std[1, 2] == pytest.approx(1 / math.sqrt(sample.var() + 1e-5), rel=1e-5)

    y, mean, std = run_op("LayerNorm", x, num_outputs=3, axis=2)
    row = x[1, 3]
    np.testing.assert_allclose(y[1, 3], (row - row.mean()) / math.sqrt(row.var() + 1e-5), atol=1e-5)
    assert mean.shape == (2, 4, 1) and std[1, 3, 0] == pytest.approx(math.sqrt(row.var() + 1e-5))

    y, mean, inv_std = run_op("GroupNorm", x, gamma, beta, num_outputs=3, group=2)
    block = x[0, 2:4]
    expected = (block - block.mean()) / math.sqrt(block.var() + 1e-5)
    np.testing.assert_allclose(y[0, 3], expected[1] * 4 - 1, rtol=1e-4, atol=1e-5)
    assert mean.shape == (2, 2) and mean[0, 1] == pytest.approx(block.mean(), abs=1e-6)


def test_lrn(run_op: RunOp) -> None:
    x = _rand(1, 5, 2, 2)
    size, alpha, beta, bias = 3, 0.3, 0.75, 2.0
    y, scale = run_op("LRN", x, num_outputs=2, size=size, alpha=alpha, beta=beta, bias=bias)
    for c in range(5):
        lo, hi = max(c - 1, 0), min(c + 1, 4)  # channels c - 1 .. c + 1
        s = bias + alpha / size * (x[0, lo : hi + 1] ** 2).sum(axis=0)
        np.testing.assert_allclose(scale[0, c], s, rtol=1e-5)
        np.testing.assert_allclose(y[0, c], x[0, c] * s**-beta, rtol=1e-5)


def test_activations(run1: Run1) -> None:
    x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0], dtype=F32)
    v = x.astype(np.float64)
    sig = 1 / (1 + np.exp(-v))
    cases = {
        "Relu": np.maximum(v, 0),
        "Sigmoid": sig,
        "Tanh": np.tanh(v),
        "Softplus": np.log1p(np.exp(v)),
        "Softsign": v / (1 + np.abs(v)),
        "Swish": v * sig,
        "Elu": np.where(v > 0, v, np.exp(v) - 1),
        "HardSigmoid": np.clip(0.2 * v + 0.5, 0, 1),
        "LeakyRelu": np.where(v >= 0, v, 0.01 * v),
        "Gelu": [0.5 * t * (1 + math.erf(t / math.sqrt(2))) for t in v],
        "Selu": 1.0507009873554805 * np.where(v > 0, v, 1.6732632423543772 * (np.exp(v) - 1)),
    }
    for op, expected in cases.items():
        np.testing.assert_allclose(run1(op, x), expected, rtol=1e-5, atol=1e-6, err_msg=op)
    np.testing.assert_allclose(run1("LeakyRelu", x, alpha=0.5), np.where(v >= 0, v, 0.5 * v))
    np.testing.assert_allclose(run1("Elu", x, alpha=2.0), np.where(v > 0, v, 2 * np.expm1(v)), 1e-6)
    fast = 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
    np.testing.assert_allclose(run1("Gelu", x, fast_gelu=1), fast, rtol=1e-5, atol=1e-6)


def test_prelu_shared_and_per_channel(run1: Run1) -> None:
    x = -np.ones((1, 2, 2, 2), dtype=F32)
    x[0, 0, 0, 0] = 3
    assert run1("PRelu", x, np.array([0.5], F32))[0, 1, 1, 1] == -0.5
    y = run1("PRelu", x, np.array([0.1, 0.2], F32))
    assert (y[0, 0, 0, 0], y[0, 0, 1, 1], y[0, 1, 0, 0]) == (
        3,
        pytest.approx(-0.1),
        pytest.approx(-0.2),
    )
    nhwc = run1("PRelu", x.transpose(0, 2, 3, 1), np.array([0.1, 0.2], F32), order="NHWC")
    np.testing.assert_array_equal(nhwc, y.transpose(0, 2, 3, 1))


def test_softmax_spans_every_dim_from_axis(run1: Run1) -> None:
    x = _rand(2, 3, 4)
    y = run1("Softmax", x)  # axis=1: softmax over the 12 values of each sample together
    e = np.exp(x[1].astype(np.float64))
    np.testing.assert_allclose(y[1], e / e.sum(), rtol=1e-5)
    y2 = run1("Softmax", x, axis=2)
    np.testing.assert_allclose(y2.sum(axis=2), np.ones((2, 3)), rtol=1e-5)


def test_dropout_normalize_lpnorm(run_op: RunOp, run1: Run1) -> None:
    x = _rand(2, 3)
    y, mask = run_op("Dropout", x, num_outputs=2, is_test=1, ratio=0.3)
    np.testing.assert_array_equal(y, x)
    assert mask.dtype == np.bool_ and mask.all()
    with pytest.raises(UnsupportedError, match="is_test"):
        run_op("Dropout", x)
    v = np.array([[3, 4], [0, 0]], dtype=F32)
    np.testing.assert_allclose(run1("Normalize", v), [[0.6, 0.8], [0, 0]], rtol=1e-6)
    assert run1("LpNorm", v).tolist() == [25]  # p=2 is the sum of squares, no square root
    assert run1("LpNorm", v, p=1, average=1).tolist() == [7 / 4]


# -- tensor ops ---------------------------------------------------------------------------------
def test_concat_and_split(run_op: RunOp, run1: Run1) -> None:
    a, b = np.zeros((2, 1, 3), F32), np.ones((2, 2, 3), F32)
    y, info = run_op("Concat", a, b, num_outputs=2)  # axis defaults to C of NCHW: 1
    assert y.shape == (2, 3, 3) and info.tolist() == [1, 2] and info.dtype == np.int32
    y, info = run_op("Concat", a, a, num_outputs=2, axis=-1)
    assert y.shape == (2, 1, 6) and info.tolist() == [3, 3]
    stacked, info = run_op("Concat", a, a, num_outputs=2, axis=0, add_axis=1)
    assert stacked.shape == (2, 2, 1, 3) and info.tolist() == [1, 1]
    x = np.arange(12, dtype=F32).reshape(2, 6)
    p, q = run_op("Split", x, num_outputs=2)
    assert p.tolist() == [[0, 1, 2], [6, 7, 8]] and q.shape == (2, 3)
    p, q = run_op("Split", x, num_outputs=2, split=[1, 5])
    assert p.shape == (2, 1) and q.shape == (2, 5)
    p, q = run_op("Split", x, np.array([4, 2], np.int32), num_outputs=2)
    assert q.tolist() == [[4, 5], [10, 11]]
    p, q = run_op("Split", x, num_outputs=2, axis=0, add_axis=1)
    assert p.tolist() == [0, 1, 2, 3, 4, 5]
    with pytest.raises(BadInputError, match="equal parts"):
        run_op("Split", x, num_outputs=4)


def test_concat_order_nhwc(run1: Run1) -> None:
    a = np.zeros((1, 2, 2, 3), F32)
    assert run1("Concat", a, a, order="NHWC").shape == (1, 2, 2, 6)


def test_reshape_rules(run_op: RunOp, run1: Run1) -> None:
    x = np.arange(24, dtype=F32).reshape(2, 3, 4)
    y, old = run_op("Reshape", x, num_outputs=2, shape=[0, -1])
    assert y.shape == (2, 12) and old.tolist() == [2, 3, 4] and old.dtype == np.int64
    assert run1("Reshape", x, np.array([4, 0, 2], np.int64)).shape == (4, 3, 2)
    with pytest.raises(BadInputError, match="more than one -1"):
        run1("Reshape", x, shape=[-1, -1])
    with pytest.raises(BadInputError, match="cannot reshape"):
        run1("Reshape", x, shape=[5, -1])
    assert run1("Flatten", x, axis=2).shape == (6, 4)
    assert run1("Flatten", x).shape == (2, 12)
    assert run1("FlattenToVec", x).shape == (24,)
    assert run1("Transpose", x).shape == (4, 3, 2)
    t = run1("Transpose", x, axes=[1, 0, 2])
    assert t[2, 1, 3] == x[1, 2, 3]
    assert run1("ExpandDims", x, dims=[0, 4]).shape == (1, 2, 3, 4, 1)
    assert run1("Squeeze", np.zeros((1, 3, 1, 2), F32), dims=[0, 2]).shape == (3, 2)
    with pytest.raises(BadInputError, match="size is not 1"):
        run1("Squeeze", x, dims=[1])


def test_tile_slice_gather(run1: Run1) -> None:
    x = np.array([[1, 2], [3, 4]], dtype=F32)
    assert run1("Tile", x, tiles=2, axis=1).tolist() == [[1, 2, 1, 2], [3, 4, 3, 4]]
    assert run1("Tile", x, tiles=2).tolist() == [[1, 2], [3, 4], [1, 2], [3, 4]]
    data = np.arange(20, dtype=F32).reshape(4, 5)
    # Caffe2 Slice: -1 is the end (a negative index counts from size + 1).
    assert run1("Slice", data, starts=[1, 0], ends=[3, -1]).tolist() == data[1:3, :].tolist()
    assert run1("Slice", data, starts=[0, -3], ends=[-1, -1]).tolist() == data[:, 3:].tolist()
    got = run1("Slice", data, np.array([2], np.int64), np.array([4], np.int64))
    assert got.tolist() == data[2:4].tolist()
    # The example in Caffe2's Slice documentation.
    doc = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=F32)
    assert run1("Slice", doc, starts=[0, 1], ends=[-1, 3]).tolist() == [[2, 3], [6, 7]]
    idx = np.array([[0, 2], [3, 3]], dtype=np.int64)
    g = run1("Gather", data, idx)
    assert g.shape == (2, 2, 5) and g[1, 0].tolist() == data[3].tolist()
    assert run1("Gather", data, np.array([4, 0]), axis=1).tolist() == data[:, [4, 0]].tolist()
    assert run1("BatchGather", data, np.array([1])).tolist() == data[:, [1]].tolist()
    with pytest.raises(BadInputError, match="out of range"):
        run1("Gather", data, np.array([-1]))
    assert run1("Gather", data, np.array([-1]), wrap_indices=1).tolist() == [data[3].tolist()]


def test_matmul_and_batch_matmul(run1: Run1) -> None:
    a = np.array([[1, 2], [3, 4]], dtype=F32)
    b = np.array([[5, 6], [7, 8]], dtype=F32)
    assert run1("MatMul", a, b).tolist() == [[19, 22], [43, 50]]
    assert run1("MatMul", a, b, trans_b=1).tolist() == [[17, 23], [39, 53]]
    assert run1("MatMul", a, b, trans_a=1).tolist() == [[26, 30], [38, 44]]
    a3, b3 = _rand(3, 2, 4), _rand(3, 4, 5, seed=1)
    y = run1("BatchMatMul", a3, b3)
    np.testing.assert_allclose(y[2], a3[2] @ b3[2], rtol=1e-5)
    y = run1("BatchMatMul", a3, b3.transpose(0, 2, 1).copy(), trans_b=1)
    np.testing.assert_allclose(y[1], a3[1] @ b3[1], rtol=1e-5)
    with pytest.raises(BadInputError, match="broadcast"):
        run1("BatchMatMul", a3, b3[0])
    assert run1("BatchMatMul", a3, b3[0], broadcast=1).shape == (3, 2, 5)


def test_shape_size_channel_shuffle_resize(run1: Run1) -> None:
    x = np.arange(6, dtype=F32).reshape(1, 6, 1, 1)
    assert run1("Shape", x).tolist() == [1, 6, 1, 1]
    assert run1("Shape", x, axes=[1]).tolist() == [6]
    size = run1("Size", x)
    assert size.shape == () and int(size) == 6
    assert run1("ChannelShuffle", x, group=2).reshape(-1).tolist() == [0, 3, 1, 4, 2, 5]
    assert run1("ChannelShuffle", x, group=3).reshape(-1).tolist() == [0, 2, 4, 1, 3, 5]
    img = np.array([[[[1, 2], [3, 4]]]], dtype=F32)
    y = run1("ResizeNearest", img, height_scale=2.0, width_scale=1.5)
    assert y[0, 0].tolist() == [[1, 1, 2], [1, 1, 2], [3, 3, 4], [3, 3, 4]]
    assert run1("Copy", img).tolist() == img.tolist()


def test_reductions(run_op: RunOp, run1: Run1) -> None:
    x = np.array([[[1, -2], [3, 4]], [[5, 6], [-7, 8]]], dtype=F32)  # (2, 2, 2)
    assert run1("ReduceSum", x).reshape(-1).tolist() == [18]
    assert run1("ReduceSum", x, axes=[0], keepdims=0).tolist() == [[6, 4], [-4, 12]]
    assert run1("ReduceMean", x, axes=[2], keepdims=1).shape == (2, 2, 1)
    assert run1("ReduceMax", x, axes=[1, 2], keepdims=0).tolist() == [4, 8]
    assert run1("ReduceMin", x, axes=[-1], keepdims=0).tolist() == [[-2, 3], [5, -7]]
    assert run1("ReduceL1", x, axes=[0], keepdims=0).tolist() == [[6, 8], [10, 12]]
    assert run1("ReduceL2", x, axes=[0], keepdims=0)[0, 0] == pytest.approx(math.sqrt(26))
    assert run1("ReduceFrontSum", x).tolist() == [[6, 4], [-4, 12]]
    assert run1("ReduceBackMean", x, num_reduce_dim=2).tolist() == [1.5, 3]
    assert run1("ReduceFrontMax", x, num_reduce_dim=2).tolist() == [5, 8]
    m = np.array([[1, 9, 9], [4, 2, 0]], dtype=F32)
    assert run1("ArgMax", m).tolist() == [[1], [0]]  # first of equal maxima
    assert run1("ArgMin", m, axis=0, keepdims=0).tolist() == [0, 1, 1]
    values, indices, flat = run_op("TopK", m, num_outputs=3, k=2)
    assert values.tolist() == [[9, 9], [4, 2]]
    assert indices.tolist() == [[1, 2], [0, 1]] and indices.dtype == np.int64
    assert flat.tolist() == [1, 2, 3, 4]
    values, indices = run_op("TopK", m, num_outputs=2, k=1, axis=0)
    assert values.tolist() == [[4, 9, 9]] and indices.tolist() == [[1, 0, 0]]
    with pytest.raises(BadInputError, match="k must be"):
        run_op("TopK", m, num_outputs=2, k=4)
