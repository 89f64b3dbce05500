"""Convolution and pooling: Conv, ConvTranspose, MaxPool, AveragePool, LpPool (1-D to 3-D).

Arguments follow Caffe2's ConvPoolOpBase: ``kernels``/``kernel``/``kernel_h``+``kernel_w`` (and the
same three spellings for stride and dilation), ``pads`` (all begins, then all ends), ``pad`` or
``pad_t``/``pad_l``/``pad_b``/``pad_r``, ``legacy_pad`` and ``order``. Caffe2 accepts the single
spellings (``kernel``, ``pad``...) only for 2-D images; here they apply to every spatial axis.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from unframe.backends.caffe2.native.executor.registry import KernelTypes, OpContext, caffe2_op

# ConvOp<float, CPUContext> (conv_op.cc); PoolOp<float, CPUContext, ...> for MaxPool and
# AveragePool (pool_op.cc).
_CONV = KernelTypes.of("conv_op.cc", np.float32)
_POOL = KernelTypes.of("pool_op.cc", np.float32)

# caffe2_legacy.proto's LegacyPadding values.
NOTSET, VALID, SAME, CAFFE_LEGACY_POOLING = 0, 1, 2, 3
_LEGACY_NAMES = {NOTSET: "NOTSET", VALID: "VALID", SAME: "SAME", 3: "CAFFE_LEGACY_POOLING"}


@dataclass
class Window:
    """Kernel geometry for one op, resolved against an input's spatial sizes."""

    kernel: list[int]
    stride: list[int]
    dilation: list[int]
    pad_begin: list[int]
    pad_end: list[int]
    out_size: list[int]


def geometry_arg(
    ctx: OpContext, plural: str, single: str, pair: tuple[str, str], nd: int
) -> list[int] | None:
    """One geometry argument in any of its three spellings, or None where none is given."""
    if ctx.arg_ints(plural):  # Caffe2 reads an empty list as not given
        return ctx.arg_ints(plural)
    if ctx.has(single):
        return [ctx.arg_int(single, 0)] * nd
    given = [ctx.has(name) for name in pair]
    if all(given):
        return [ctx.arg_int(name, 0) for name in pair]
    if any(given):
        raise ctx.error(f"give both {pair[0]} and {pair[1]}, or neither")
    return None


def _pads(ctx: OpContext, nd: int) -> tuple[list[int], list[int]] | None:
    if ctx.arg_ints("pads"):  # an empty list counts as not given, as in Caffe2
        pads = ctx.arg_ints("pads")
        if len(pads) != 2 * nd:
            raise ctx.error(f"pads has {len(pads)} values, a {nd}-D kernel needs {2 * nd}")
        return pads[:nd], pads[nd:]
    if ctx.has("pad"):
        pad = ctx.arg_int("pad", 0)
        return [pad] * nd, [pad] * nd
    names = ("pad_t", "pad_l", "pad_b", "pad_r")
    given = [ctx.has(name) for name in names]
    if all(given):
        if nd != 2:
            raise ctx.error("pad_t/pad_l/pad_b/pad_r describe 2-D images only")
        t, left, b, r = (ctx.arg_int(name, 0) for name in names)
        return [t, left], [b, r]
    if any(given):
        raise ctx.error("give all four of pad_t, pad_l, pad_b and pad_r, or none")
    return None


def _legacy_pad(ctx: OpContext) -> int:
    legacy = ctx.arg_int("legacy_pad", NOTSET)
    if legacy not in _LEGACY_NAMES:
        raise ctx.error(f"unknown legacy_pad value {legacy}")
    return legacy


def _size_and_pad(
    ctx: OpContext,
    size: int,
    kernel: int,
    stride: int,
    dilation: int,
    legacy: int,
    head: int,
    tail: int,
) -> tuple[int, int, int]:
    """Caffe2's ComputeSizeAndPad: (output size, pad head, pad tail) for one spatial axis."""
    dkernel = dilation * (kernel - 1) + 1
    if legacy == NOTSET:
        if size + head + tail < dkernel:
            raise ctx.error(
                f"the kernel ({dkernel} with dilation) is larger than the padded input "
                f"({size + head + tail})"
            )
        return (size + head + tail - dkernel) // stride + 1, head, tail
    if legacy == VALID:
        if size < dkernel:
            raise ctx.error(f"the kernel ({dkernel}) is larger than the input ({size})")
        return (size - dkernel) // stride + 1, 0, 0
    if legacy == SAME:
        if dilation != 1:
            raise ctx.error("legacy_pad SAME does not support dilation")
        target = (size + stride - 1) // stride
        needed = max((target - 1) * stride + kernel - size, 0)
        head = needed // 2  # Caffe2 puts the odd pad at the tail (CAFFE2_PAD_HEAD_MORE false)
        return (size + needed - dkernel) // stride + 1, head, needed - head
    # CAFFE_LEGACY_POOLING: Caffe's ceil-mode size, the last window starting inside the image.
    if head < 0:
        raise ctx.error("pads must be non-negative")
    out = math.ceil((size + 2 * head - kernel) / stride + 1)
    if head > 0 and (out - 1) * stride >= size + head:
        out -= 1
    standard = int((size + 2 * head - kernel) / stride + 1)
    return out, head, head + stride * (out - standard)


def resolve_window(
    ctx: OpContext,
    spatial: list[int],
    *,
    kernel_from: list[int] | None = None,
    global_pooling: bool = False,
) -> Window:
    """Kernel, stride, dilation, pads and output sizes for an input with ``spatial`` sizes."""
    nd = len(spatial)
    kernel = geometry_arg(ctx, "kernels", "kernel", ("kernel_h", "kernel_w"), nd)
    stride = geometry_arg(ctx, "strides", "stride", ("stride_h", "stride_w"), nd) or [1] * nd
    dilation = (
        geometry_arg(ctx, "dilations", "dilation", ("dilation_h", "dilation_w"), nd) or [1] * nd
    )
    pads = _pads(ctx, nd)
    legacy = _legacy_pad(ctx)
    if legacy in (VALID, SAME) and pads is not None:
        raise ctx.error(f"legacy_pad {_LEGACY_NAMES[legacy]} cannot be combined with explicit pads")
    begin, end = pads if pads is not None else ([0] * nd, [0] * nd)
    if global_pooling:
        if any(begin + end) or any(s != 1 for s in stride) or any(d != 1 for d in dilation):
            raise ctx.error("global_pooling cannot be combined with pads, strides or dilations")
        return Window(list(spatial), [1] * nd, [1] * nd, [0] * nd, [0] * nd, [1] * nd)
    if kernel is None:
        if kernel_from is None:
            raise ctx.error("no kernel size given (kernels, kernel or kernel_h/kernel_w)")
        kernel = list(kernel_from)
    for name, values in (("kernel", kernel), ("stride", stride), ("dilation", dilation)):
        if len(values) != nd:
            raise ctx.error(f"{name} has {len(values)} values for a {nd}-D input")
        if any(v <= 0 for v in values):
            raise ctx.error(f"{name} values must be positive, got {values}")
    if any(p < 0 for p in begin + end):
        raise ctx.error(f"pads must be non-negative, got {begin + end}")
    out_size, pad_begin, pad_end = [], [], []
    for i in range(nd):
        size, head, tail = _size_and_pad(
            ctx, spatial[i], kernel[i], stride[i], dilation[i], legacy, begin[i], end[i]
        )
        out_size.append(size)
        pad_begin.append(head)
        pad_end.append(tail)
    return Window(kernel, stride, dilation, pad_begin, pad_end, out_size)


def _to_nchw(x: np.ndarray, order: str) -> np.ndarray:
    return np.moveaxis(x, -1, 1) if order == "NHWC" else x


def _from_nchw(y: np.ndarray, order: str) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(y, 1, -1)) if order == "NHWC" else y


def _spatial_input(ctx: OpContext) -> tuple[np.ndarray, str]:
    x = ctx.input(0)
    order = ctx.order()
    if x.ndim < 3:
        raise ctx.error(f"expects an N-D image batch (at least 3-D), got shape {x.shape}")
    return _to_nchw(x, order), order


# -- convolution --------------------------------------------------------------------------------
@caffe2_op("Conv", "Conv1D", "Conv2D", "Conv3D")
def conv(ctx: OpContext) -> list[np.ndarray]:
    """Y = X * W (+ b), with groups; W is (M, C/group, k...) in NCHW, (M, k..., C/group) in NHWC."""
    x, order = _spatial_input(ctx)
    _CONV.check(ctx, ctx.input(0))
    w = _to_nchw(ctx.input(1), order)
    group = ctx.arg_int("group", 1)
    n, c = x.shape[:2]
    m = w.shape[0]
    if w.ndim != x.ndim:
        raise ctx.error(
            f"filter shape {ctx.input(1).shape} does not fit input {ctx.input(0).shape}"
        )
    if group <= 0 or c % group or m % group or w.shape[1] * group != c:
        raise ctx.error(
            f"input channels {c}, filter {ctx.input(1).shape} and group {group} do not agree"
        )
    window = resolve_window(ctx, list(x.shape[2:]), kernel_from=list(w.shape[2:]))
    if list(w.shape[2:]) != window.kernel:
        raise ctx.error(f"kernel {window.kernel} does not match the filter's {list(w.shape[2:])}")
    xp = np.pad(x, [(0, 0), (0, 0), *zip(window.pad_begin, window.pad_end, strict=True)])
    cg, mg = c // group, m // group
    dtype = np.result_type(x.dtype, w.dtype)
    size = math.prod(window.out_size)
    acc = np.zeros((group, mg, n * size), dtype=dtype)
    wg = w.reshape(group, mg, cg, -1)  # kernel positions flattened in row-major order
    for tap, pos in enumerate(itertools.product(*(range(k) for k in window.kernel))):
        patch = xp[(slice(None), slice(None), *_taps(pos, window))]
        cols = patch.reshape(n, group, cg, size).transpose(1, 2, 0, 3).reshape(group, cg, n * size)
        acc += np.matmul(wg[:, :, :, tap], cols)
    y = acc.reshape(m, n, *window.out_size).swapaxes(0, 1)
    b = ctx.optional_input(2)
    if b is not None:
        if b.size != m:
            raise ctx.error(f"bias has {b.size} values for {m} output channels")
        y = y + b.reshape(1, m, *([1] * len(window.out_size))).astype(dtype)
    return [_from_nchw(np.ascontiguousarray(y, dtype=dtype), order)]


def _taps(pos: tuple[int, ...], window: Window) -> list[slice]:
    """Slices of the padded input that kernel position ``pos`` reads for every output pixel."""
    return [
        slice(p * d, p * d + s * (o - 1) + 1, s)
        for p, d, s, o in zip(pos, window.dilation, window.stride, window.out_size, strict=True)
    ]


@caffe2_op("ConvTranspose")
def conv_transpose(ctx: OpContext) -> list[np.ndarray]:
    """Transposed convolution; W is (C, M/group, k...) in NCHW, (C, k..., M/group) in NHWC."""
    x, order = _spatial_input(ctx)
    _CONV.check(ctx, ctx.input(0))
    w = _to_nchw(ctx.input(1), order)
    group = ctx.arg_int("group", 1)
    n, c = x.shape[:2]
    spatial = list(x.shape[2:])
    nd = len(spatial)
    if w.ndim != x.ndim or w.shape[0] != c or group <= 0 or c % group:
        raise ctx.error(
            f"filter {ctx.input(1).shape} does not fit input {ctx.input(0).shape}, group {group}"
        )
    kernel = geometry_arg(ctx, "kernels", "kernel", ("kernel_h", "kernel_w"), nd) or list(
        w.shape[2:]
    )
    stride = geometry_arg(ctx, "strides", "stride", ("stride_h", "stride_w"), nd) or [1] * nd
    adj = geometry_arg(ctx, "adjs", "adj", ("adj_h", "adj_w"), nd) or [0] * nd
    pads = _pads(ctx, nd)
    begin, end = pads if pads is not None else ([0] * nd, [0] * nd)
    legacy = _legacy_pad(ctx)
    if legacy == VALID:
        if pads is not None:
            raise ctx.error("legacy_pad VALID cannot be combined with explicit pads")
        begin, end = [0] * nd, [0] * nd
    elif legacy != NOTSET:
        raise ctx.unsupported(f"legacy_pad {_LEGACY_NAMES[legacy]} is not supported here")
    if kernel != list(w.shape[2:]) or len(stride) != nd or len(adj) != nd:
        raise ctx.error(f"kernel {kernel}, strides {stride} or adjs {adj} do not fit the filter")
    if any(a < 0 or a >= s for a, s in zip(adj, stride, strict=True)):
        raise ctx.error(f"adj values must be in [0, stride), got {adj} with strides {stride}")
    cg, mg = c // group, w.shape[1]
    m = mg * group
    dtype = np.result_type(x.dtype, w.dtype)
    full = [(size - 1) * s + k for size, s, k in zip(spatial, stride, kernel, strict=True)]
    out_size = [f - b - e + a for f, b, e, a in zip(full, begin, end, adj, strict=True)]
    if any(size <= 0 for size in out_size):
        raise ctx.error(f"the pads leave no output (size {out_size})")
    canvas = np.zeros(
        (n, m, *[max(f, b + o) for f, b, o in zip(full, begin, out_size, strict=True)]), dtype
    )
    cols = x.reshape(n, group, cg, -1).transpose(1, 2, 0, 3).reshape(group, cg, -1)
    wg = w.reshape(group, cg, mg, -1)  # kernel positions flattened in row-major order
    for tap, pos in enumerate(itertools.product(*(range(k) for k in kernel))):
        part = np.matmul(wg[:, :, :, tap].swapaxes(1, 2), cols)
        part = part.reshape(m, n, *spatial).swapaxes(0, 1)
        taps = [
            slice(p, p + s * (size - 1) + 1, s)
            for p, s, size in zip(pos, stride, spatial, strict=True)
        ]
        canvas[(slice(None), slice(None), *taps)] += part
    y = canvas[
        (slice(None), slice(None), *[slice(b, b + o) for b, o in zip(begin, out_size, strict=True)])
    ]
    b = ctx.optional_input(2)
    if b is not None:
        if b.size != m:
            raise ctx.error(f"bias has {b.size} values for {m} output channels")
        y = y + b.reshape(1, m, *([1] * nd)).astype(dtype)
    return [_from_nchw(np.ascontiguousarray(y), order)]


# -- pooling ------------------------------------------------------------------------------------
def _pool_windows(x: np.ndarray, window: Window, fill: float) -> np.ndarray:
    """(N, C, out..., k...) view of the padded input, one window per output pixel."""
    nd = len(window.kernel)
    xp = np.pad(
        x,
        [(0, 0), (0, 0), *zip(window.pad_begin, window.pad_end, strict=True)],
        constant_values=fill,
    )
    extent = [d * (k - 1) + 1 for d, k in zip(window.dilation, window.kernel, strict=True)]
    view = sliding_window_view(xp, extent, axis=tuple(range(2, 2 + nd)))
    steps = tuple(
        slice(None, s * (o - 1) + 1, s) for s, o in zip(window.stride, window.out_size, strict=True)
    )
    taps = tuple(slice(None, None, d) for d in window.dilation)
    return view[(slice(None), slice(None), *steps, *taps)]


def _pool_setup(ctx: OpContext) -> tuple[np.ndarray, str, Window]:
    x, order = _spatial_input(ctx)
    window = resolve_window(
        ctx, list(x.shape[2:]), global_pooling=bool(ctx.arg_int("global_pooling", 0))
    )
    return x, order, window


@caffe2_op("MaxPool", "MaxPool1D", "MaxPool2D", "MaxPool3D")
def max_pool(ctx: OpContext) -> list[np.ndarray]:
    x, order, window = _pool_setup(ctx)
    _POOL.check(ctx, x)
    fill = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    axes = tuple(range(-len(window.kernel), 0))
    y = _pool_windows(x, window, fill).max(axis=axes)
    return [_from_nchw(np.ascontiguousarray(y, dtype=x.dtype), order)]


@caffe2_op("AveragePool", "AveragePool1D", "AveragePool2D", "AveragePool3D")
def average_pool(ctx: OpContext) -> list[np.ndarray]:
    """Mean over each window; by default (count_include_pad=0) over its in-image elements only."""
    x, order, window = _pool_setup(ctx)
    _POOL.check(ctx, x)
    axes = tuple(range(-len(window.kernel), 0))
    total = _pool_windows(x, window, 0.0).sum(axis=axes, dtype=np.float64)
    if ctx.arg_int("count_include_pad", 0):
        count: np.ndarray | int = math.prod(window.kernel)
    else:
        ones = np.ones((1, 1, *x.shape[2:]), dtype=np.float64)
        count = _pool_windows(ones, window, 0.0).sum(axis=axes)
    y = (total / count).astype(x.dtype)
    return [_from_nchw(np.ascontiguousarray(y), order)]


@caffe2_op("LpPool")
def lp_pool(ctx: OpContext) -> list[np.ndarray]:
    """(sum over the window of |x|^p)^(1/p); the padding adds nothing."""
    x, order, window = _pool_setup(ctx)
    p = ctx.arg_float("p", 2.0)
    if p <= 0:
        raise ctx.error(f"p must be positive, got {p}")
    axes = tuple(range(-len(window.kernel), 0))
    powered = np.abs(x.astype(np.float64)) ** p
    y = (_pool_windows(powered, window, 0.0).sum(axis=axes) ** (1.0 / p)).astype(x.dtype)
    return [_from_nchw(np.ascontiguousarray(y), order)]
