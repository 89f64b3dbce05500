"""Conv, ConvTranspose and pooling against hand-computed values and a plain-loop oracle."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from unframe.shared_ir.errors import BadInputError

Run1 = Callable[..., np.ndarray]


def naive_conv(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    stride: Sequence[int] | None = None,
    begin: Sequence[int] | None = None,
    end: Sequence[int] | None = None,
    dilation: Sequence[int] | None = None,
    group: int = 1,
) -> np.ndarray:
    """N-D NCHW convolution by the definition: one dot product per output element."""
    nd = x.ndim - 2
    stride = stride or [1] * nd
    begin, end = begin or [0] * nd, end or [0] * nd
    dilation = dilation or [1] * nd
    n, c = x.shape[:2]
    m, cg = w.shape[:2]
    kernel = w.shape[2:]
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), *zip(begin, end, strict=True)])
    out = [
        (xp.shape[2 + i] - (dilation[i] * (kernel[i] - 1) + 1)) // stride[i] + 1 for i in range(nd)
    ]
    y = np.zeros((n, m, *out))
    for batch, filt in itertools.product(range(n), range(m)):
        g = filt // (m // group)
        for pos in itertools.product(*(range(o) for o in out)):
            total = 0.0
            for ch, tap in itertools.product(range(cg), itertools.product(*map(range, kernel))):
                where = tuple(pos[i] * stride[i] + tap[i] * dilation[i] for i in range(nd))
                total += xp[(batch, g * cg + ch, *where)] * w[(filt, ch, *tap)]
            y[(batch, filt, *pos)] = total + (b[filt] if b is not None else 0.0)
    return y


def test_conv_3x3_by_hand(run1: Run1) -> None:
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    w = np.ones((1, 1, 3, 3), dtype=np.float32)
    y = run1("Conv", x, w, np.array([1.0], dtype=np.float32), kernel=3)
    # 0+1+2+4+5+6+8+9+10 = 45, shifted windows add 9 per column step and 36 per row step.
    np.testing.assert_array_equal(y, [[[[46, 55], [82, 91]]]])
    assert y.dtype == np.float32
    edge = np.array([[1, 0, -1]] * 3, dtype=np.float32).reshape(1, 1, 3, 3)
    np.testing.assert_array_equal(run1("Conv", x, edge, kernel=3), np.full((1, 1, 2, 2), -6.0))


@pytest.mark.parametrize(
    "args",
    [
        {"kernel": 3, "stride": 2, "pad": 1},
        {"kernels": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
        {
            "kernel_h": 3, "kernel_w": 3, "stride_h": 2, "stride_w": 2,
            "pad_t": 1, "pad_l": 1, "pad_b": 1, "pad_r": 1,
        },
        {"stride": 2, "pad": 1},  # no kernel argument: the filter's shape gives it
        {"kernels": [3, 3], "strides": [], "stride": 2, "pads": [], "pad": 1},  # [] = not given
    ],
)  # fmt: skip
def test_conv_argument_spellings(run1: Run1, args: dict) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    expected = naive_conv(x, w, b, stride=[2, 2], begin=[1, 1], end=[1, 1])
    np.testing.assert_allclose(run1("Conv", x, w, b, **args), expected, rtol=1e-5, atol=1e-5)


def test_conv_pads_are_all_begins_then_all_ends(run1: Run1) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 5, 4)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    y = run1("Conv", x, w, kernels=[3, 3], pads=[1, 0, 2, 3])  # t, l, b, r
    assert y.shape == (1, 3, 5 + 1 + 2 - 3 + 1, 4 + 0 + 3 - 3 + 1)
    np.testing.assert_allclose(y, naive_conv(x, w, begin=[1, 0], end=[2, 3]), atol=1e-5)
    y = run1("Conv", x, w, kernel=3, pad_t=1, pad_l=0, pad_b=2, pad_r=3)
    np.testing.assert_allclose(y, naive_conv(x, w, begin=[1, 0], end=[2, 3]), atol=1e-5)


def test_conv_group_and_dilation(run1: Run1) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 4, 7, 7)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(
        run1("Conv", x, w, kernel=3, group=2), naive_conv(x, w, group=2), atol=1e-5
    )
    w1 = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(
        run1("Conv", x, w1, kernel=3, dilation=2, pad=1),
        naive_conv(x, w1, dilation=[2, 2], begin=[1, 1], end=[1, 1]),
        atol=1e-5,
    )
    depthwise = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(
        run1("Conv", x, depthwise, kernel=3, group=4), naive_conv(x, depthwise, group=4), atol=1e-5
    )


def test_conv_nhwc(run1: Run1) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 3, 5, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 2, 3)).astype(np.float32)
    expected = naive_conv(x, w, stride=[1, 2], begin=[1, 0], end=[0, 1])
    y = run1(
        "Conv",
        x.transpose(0, 2, 3, 1),
        w.transpose(0, 2, 3, 1),  # NHWC filters are M x kh x kw x C
        order="NHWC",
        kernels=[2, 3],
        strides=[1, 2],
        pads=[1, 0, 0, 1],
    )
    np.testing.assert_allclose(y, expected.transpose(0, 2, 3, 1), atol=1e-5)


def test_conv_1d_and_3d(run1: Run1) -> None:
    rng = np.random.default_rng(4)
    x1 = rng.standard_normal((2, 2, 9)).astype(np.float32)
    w1 = rng.standard_normal((3, 2, 3)).astype(np.float32)
    y1 = run1("Conv", x1, w1, kernels=[3], strides=[2], pads=[1, 2])
    np.testing.assert_allclose(y1, naive_conv(x1, w1, stride=[2], begin=[1], end=[2]), atol=1e-5)
    x3 = rng.standard_normal((1, 2, 4, 5, 3)).astype(np.float32)
    w3 = rng.standard_normal((2, 2, 2, 3, 2)).astype(np.float32)
    y3 = run1("Conv3D", x3, w3, kernels=[2, 3, 2], pads=[0, 1, 0, 1, 0, 1])
    np.testing.assert_allclose(
        y3, naive_conv(x3, w3, begin=[0, 1, 0], end=[1, 0, 1]), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(("size", "head", "tail"), [(6, 0, 1), (5, 1, 1), (7, 1, 1), (4, 0, 1)])
def test_legacy_pad_same(run1: Run1, size: int, head: int, tail: int) -> None:
    # Caffe2: target = ceil(size / stride); pad = (target - 1) * stride + kernel - size, the odd
    # one at the tail.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 1, size, size)).astype(np.float32)
    w = rng.standard_normal((1, 1, 3, 3)).astype(np.float32)
    y = run1("Conv", x, w, kernel=3, stride=2, legacy_pad=2)
    assert y.shape[2:] == (math.ceil(size / 2),) * 2
    expected = naive_conv(x, w, stride=[2, 2], begin=[head] * 2, end=[tail] * 2)
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_legacy_pad_valid_and_bad_values(run1: Run1) -> None:
    x = np.ones((1, 1, 5, 5), dtype=np.float32)
    w = np.ones((1, 1, 3, 3), dtype=np.float32)
    assert run1("Conv", x, w, kernel=3, legacy_pad=1).shape == (1, 1, 3, 3)
    with pytest.raises(BadInputError, match="explicit pads"):
        run1("Conv", x, w, kernel=3, legacy_pad=1, pad=1)
    with pytest.raises(BadInputError, match="unknown legacy_pad"):
        run1("Conv", x, w, kernel=3, legacy_pad=9)
    with pytest.raises(BadInputError, match="order"):
        run1("Conv", x, w, kernel=3, order="NCWH")
    with pytest.raises(BadInputError, match="kernel_h and kernel_w"):
        run1("Conv", x, w, kernel_h=3)
    with pytest.raises(BadInputError, match="group"):
        run1("Conv", x, w, kernel=3, group=2)


def test_conv_transpose_by_hand(run1: Run1) -> None:
    x = np.array([[[[1, 2], [3, 4]]]], dtype=np.float32)
    w = np.array([[[[1, 10], [100, 1000]]]], dtype=np.float32)
    blocks = run1("ConvTranspose", x, w, kernel=2, stride=2)
    np.testing.assert_array_equal(
        blocks[0, 0],
        [[1, 10, 2, 20], [100, 1000, 200, 2000], [3, 30, 4, 40], [300, 3000, 400, 4000]],
    )
    overlap = run1("ConvTranspose", x, w, kernel=2, stride=1)
    full = [[1, 12, 20], [103, 1234, 2040], [300, 3400, 4000]]
    np.testing.assert_array_equal(overlap[0, 0], full)
    cropped = run1("ConvTranspose", x, w, np.array([0.5], np.float32), kernel=2, pads=[1, 1, 0, 0])
    np.testing.assert_array_equal(cropped[0, 0], np.array(full)[1:, 1:] + 0.5)
    # adj adds rows/columns at the end: (2 - 1) * 2 + 2 + 1 = 5.
    adjusted = run1("ConvTranspose", x, w, kernel=2, stride=2, adj=1)
    assert adjusted.shape == (1, 1, 5, 5)
    np.testing.assert_array_equal(adjusted[0, 0, :4, :4], blocks[0, 0])
    assert not adjusted[0, 0, 4].any() and not adjusted[0, 0, :, 4].any()


def test_conv_transpose_channels_and_groups(run1: Run1) -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    w = rng.standard_normal((2, 1, 2, 2)).astype(np.float32)  # C x M/group x k x k
    y = run1("ConvTranspose", x, w, kernel=2, stride=2, group=2)
    for c in range(2):  # each group maps one channel to one channel
        single = run1("ConvTranspose", x[:, c : c + 1], w[c : c + 1], kernel=2, stride=2)
        np.testing.assert_allclose(y[:, c : c + 1], single, atol=1e-6)
    # Without groups the channels sum: output 0 = sum over c of the single-channel results.
    w2 = rng.standard_normal((2, 1, 2, 2)).astype(np.float32)
    y2 = run1("ConvTranspose", x, w2, kernel=2, stride=2)
    parts = [
        run1("ConvTranspose", x[:, c : c + 1], w2[c : c + 1], kernel=2, stride=2) for c in (0, 1)
    ]
    np.testing.assert_allclose(y2, parts[0] + parts[1], atol=1e-5)


def _caffe_pool_reference(x: np.ndarray, k: int, s: int, pad: int, out: int, fn: str) -> np.ndarray:
    """Caffe's pooling windows: start at i * s - pad, clipped to the image."""
    y = np.zeros(x.shape[:2] + (out, out))
    size = x.shape[2]
    for i, j in itertools.product(range(out), range(out)):
        r0, c0 = max(i * s - pad, 0), max(j * s - pad, 0)
        r1, c1 = min(i * s - pad + k, size), min(j * s - pad + k, size)
        window = x[:, :, r0:r1, c0:c1]
        y[:, :, i, j] = window.max(axis=(2, 3)) if fn == "max" else window.mean(axis=(2, 3))
    return y


@pytest.mark.parametrize(
    ("size", "k", "s", "pad", "out"),
    [
        (6, 3, 2, 0, 3),
        (8, 3, 2, 0, 4),
        (3, 2, 2, 1, 2),
        (5, 3, 2, 1, 3),
        (10, 2, 2, 0, 5),
        (7, 3, 2, 0, 3),
    ],
)
def test_caffe_legacy_pooling_sizes(
    run1: Run1, size: int, k: int, s: int, pad: int, out: int
) -> None:
    # out = ceil((size + 2 pad - k) / s + 1), less one where the last window would start in the
    # padding: e.g. size 3, k 2, s 2, pad 1 -> ceil(2.5) = 3, but (3 - 1) * 2 >= 3 + 1 -> 2.
    rng = np.random.default_rng(size + k)
    x = rng.standard_normal((1, 2, size, size)).astype(np.float32)
    y = run1("MaxPool", x, kernel=k, stride=s, pad=pad, legacy_pad=3)
    assert y.shape == (1, 2, out, out)
    np.testing.assert_allclose(y, _caffe_pool_reference(x, k, s, pad, out, "max"), atol=1e-6)
    avg = run1("AveragePool", x, kernel=k, stride=s, pad=pad, legacy_pad=3)
    np.testing.assert_allclose(avg, _caffe_pool_reference(x, k, s, pad, out, "avg"), atol=1e-5)


def test_average_pool_count_include_pad(run1: Run1) -> None:
    x = (np.arange(9, dtype=np.float32) + 1).reshape(1, 1, 3, 3)
    y = run1("AveragePool", x, kernel=3, stride=1, pad=1)
    # Caffe2 default: divide by the in-image elements only; corner = (1+2+4+5) / 4.
    assert y[0, 0, 0, 0] == pytest.approx(3.0)
    assert y[0, 0, 1, 1] == pytest.approx(5.0)
    assert y[0, 0, 0, 1] == pytest.approx((1 + 2 + 3 + 4 + 5 + 6) / 6)
    z = run1("AveragePool", x, kernel=3, stride=1, pad=1, count_include_pad=1)
    assert z[0, 0, 0, 0] == pytest.approx(12 / 9)
    assert z[0, 0, 1, 1] == pytest.approx(5.0)


def test_max_pool_ignores_padding(run1: Run1) -> None:
    x = -np.ones((1, 1, 2, 2), dtype=np.float32)
    np.testing.assert_array_equal(run1("MaxPool", x, kernel=2, pad=1), -np.ones((1, 1, 3, 3)))


def test_global_pooling(run1: Run1) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(
        run1("AveragePool", x, global_pooling=1), x.mean(axis=(2, 3), keepdims=True), atol=1e-6
    )
    np.testing.assert_array_equal(
        run1("MaxPool", x, global_pooling=1), x.max(axis=(2, 3), keepdims=True)
    )
    with pytest.raises(BadInputError, match="global_pooling"):
        run1("MaxPool", x, global_pooling=1, stride=2)


def test_pool_nhwc_and_lp_pool(run1: Run1) -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    nchw = run1("MaxPool", x, kernel=3, stride=2, pad=1)
    nhwc = run1("MaxPool", x.transpose(0, 2, 3, 1), kernel=3, stride=2, pad=1, order="NHWC")
    np.testing.assert_array_equal(nhwc, nchw.transpose(0, 2, 3, 1))
    lp = run1("LpPool", x, kernel=2, stride=2, p=2.0)
    expected = np.sqrt((x[:, :, :4, :4] ** 2).reshape(1, 3, 2, 2, 2, 2).sum(axis=(3, 5)))
    np.testing.assert_allclose(lp, expected, rtol=1e-5)


def test_pool_without_kernel_is_an_error(run1: Run1) -> None:
    with pytest.raises(BadInputError, match="no kernel size"):
        run1("MaxPool", np.ones((1, 1, 4, 4), dtype=np.float32), stride=2)
