"""Caffe2 operators the export backend emits that the core executor modules do not implement.

Each follows its Caffe2 operator schema. An op type registered twice raises when the executor's
op modules are loaded, so an op moved into a core module must leave this one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from unframe.backends.caffe2.native.executor.ops.math import binary_operands
from unframe.backends.caffe2.native.executor.registry import (
    NUMERIC_TYPES,
    KernelTypes,
    OpContext,
    OpFunction,
    caffe2_op,
    canonical_axis,
)

# ExpandOp<TensorTypes<std::int32_t, std::int64_t, float, double>, CPUContext>.
_EXPAND = KernelTypes.of("expand_op.cc", *NUMERIC_TYPES)
# RangeOp dispatches on input 0: TensorTypes<int32_t, int64_t, float, double> (utility_ops.h).
_RANGE = KernelTypes.of("utility_ops.h", *NUMERIC_TYPES)


@caffe2_op("Expand")
def expand(ctx: OpContext) -> list[np.ndarray]:
    # Caffe2: the result of numpy.array(X) * numpy.ones(shape), without the multiplication.
    x, shape = ctx.input(0), ctx.input(1)
    _EXPAND.check(ctx, x)
    dims = [int(d) for d in np.asarray(shape).reshape(-1)]
    target = np.broadcast_shapes(x.shape, tuple(dims))
    return [np.broadcast_to(x, target).copy()]


def _bitwise(function: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> OpFunction:
    def run(ctx: OpContext) -> list[np.ndarray]:
        a, b = binary_operands(ctx)
        if a.dtype != b.dtype:
            raise ctx.error(f"inputs have different types: {a.dtype} and {b.dtype}")
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
            raise ctx.error(f"expects integer or bool inputs, got {a.dtype}")
        return [function(a, b).astype(a.dtype)]

    return run


caffe2_op("BitwiseAnd")(_bitwise(np.bitwise_and))
caffe2_op("BitwiseOr")(_bitwise(np.bitwise_or))
caffe2_op("BitwiseXor")(_bitwise(np.bitwise_xor))


@caffe2_op("NormalizeL1")
def normalize_l1(ctx: OpContext) -> list[np.ndarray]:
    x = ctx.input(0)
    axis = canonical_axis(ctx, ctx.arg_int("axis", -1), x.ndim)
    norm = np.sum(np.abs(x), axis=axis, keepdims=True)
    # Caffe2 leaves a slice whose norm is zero as it is.
    safe = np.where(norm == 0, 1, norm).astype(x.dtype)
    return [(x / safe).astype(x.dtype)]


@caffe2_op("Mish")
def mish(ctx: OpContext) -> list[np.ndarray]:
    x = ctx.input(0)
    if not np.issubdtype(x.dtype, np.floating):
        raise ctx.error(f"expects a floating-point input, got {x.dtype}")
    return [(x * np.tanh(np.logaddexp(0, x))).astype(x.dtype)]


@caffe2_op("Range")
def range_(ctx: OpContext) -> list[np.ndarray]:
    values = [np.asarray(ctx.input(i)) for i in range(ctx.num_inputs)]
    if values:
        _RANGE.check(ctx, values[0])
    if not 1 <= len(values) <= 3 or any(v.size != 1 for v in values):
        raise ctx.error("takes one to three scalar inputs: [start,] stop[, step]")
    dtype = values[0].dtype
    if any(v.dtype != dtype for v in values):
        raise ctx.error("start, stop and step must have one type")
    scalars = [v.reshape(()) for v in values]
    start, stop, step = (
        (np.zeros((), dtype), scalars[0], np.ones((), dtype)) if len(scalars) == 1 else
        (scalars[0], scalars[1], np.ones((), dtype)) if len(scalars) == 2 else tuple(scalars)
    )  # fmt: skip
    if step == 0:
        raise ctx.error("step must not be 0")
    count = max(int(math.ceil((float(stop) - float(start)) / float(step))), 0)
    return [(start + np.arange(count, dtype=dtype) * step).astype(dtype)]


@caffe2_op("OneHot")
def one_hot(ctx: OpContext) -> list[np.ndarray]:
    # one_hot_ops.h: "indices input must be 1D tensor of data type int64_t", the size a
    # one-element int64 tensor (both read with data<int64_t>()).
    indices, size = ctx.input(0), ctx.input(1)
    if indices.ndim != 1 or indices.dtype != np.int64:
        raise ctx.error(
            f"indices must be a 1-D int64 tensor (caffe2/operators/one_hot_ops.h), got "
            f"{indices.dtype} {indices.shape}"
        )
    if size.size != 1 or size.dtype != np.int64:
        raise ctx.error(f"the index size must be one int64 value, got {size.dtype} {size.shape}")
    depth = int(np.asarray(size).reshape(-1)[0])
    flat = np.asarray(indices).reshape(-1).astype(np.int64)
    if ((flat < 0) | (flat >= depth)).any():
        raise ctx.error(f"an index is outside [0, {depth})")
    out = np.zeros((flat.size, depth), dtype=np.float32)
    out[np.arange(flat.size), flat] = 1
    return [out]


@caffe2_op("PadImage")
def pad_image(ctx: OpContext) -> list[np.ndarray]:
    x = ctx.input(0)
    if x.ndim != 4:
        raise ctx.error(f"expects a 4-D input, got {x.ndim}-D")
    pad = ctx.arg_int("pad", 0)
    t, l, b, r = (ctx.arg_int(k, pad) for k in ("pad_t", "pad_l", "pad_b", "pad_r"))  # noqa: E741
    pads = ctx.arg_ints("pads")
    if pads:
        t, l, b, r = pads  # noqa: E741
    spatial = ((t, b), (l, r))
    widths = ((0, 0), (0, 0), *spatial) if ctx.order() == "NCHW" else ((0, 0), *spatial, (0, 0))
    mode = ctx.arg_str("mode", "constant")
    if mode == "constant":
        return [np.pad(x, widths, mode="constant", constant_values=ctx.arg_float("value", 0.0))]
    if mode == "reflect":
        return [np.pad(x, widths, mode="reflect")]
    if mode == "edge":
        return [np.pad(x, widths, mode="edge")]
    raise ctx.error(f"unknown mode {mode!r} (constant, reflect or edge)")


@caffe2_op("UpsampleBilinear")
def upsample_bilinear(ctx: OpContext) -> list[np.ndarray]:
    x = ctx.input(0)
    if x.ndim != 4:
        raise ctx.error(f"expects a 4-D NCHW input, got {x.ndim}-D")
    height_scale, width_scale = (
        ctx.arg_float("height_scale", 1.0),
        ctx.arg_float("width_scale", 1.0),
    )
    scales = ctx.optional_input(1)
    if scales is not None:
        height_scale, width_scale = (float(s) for s in np.asarray(scales).reshape(-1)[:2])
    _, _, in_h, in_w = x.shape
    out_h, out_w = int(in_h * height_scale), int(in_w * width_scale)

    def grid(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ratio = (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
        pos = np.arange(size_out) * ratio
        low = np.floor(pos).astype(np.int64)
        high = np.minimum(low + 1, size_in - 1)
        return low, high, (pos - low).astype(x.dtype)

    y0, y1, fy = grid(in_h, out_h)
    x0, x1, fx = grid(in_w, out_w)
    top = x[:, :, y0][:, :, :, x0] * (1 - fx) + x[:, :, y0][:, :, :, x1] * fx
    bottom = x[:, :, y1][:, :, :, x0] * (1 - fx) + x[:, :, y1][:, :, :, x1] * fx
    out = top * (1 - fy)[:, None] + bottom * fy[:, None]
    return [out.astype(x.dtype)]


# ScatterAssignOp's runners (utility_ops.h): data float, at::Half, uint8, int32 or int64,
# indices int32 or int64. ScatterWeightedSumOp<float, CPUContext> (utility_ops.cc) dispatches on
# the indices: TensorTypes<int32_t, int64_t>.
_SCATTER_ASSIGN = KernelTypes.of("utility_ops.h", np.float32, np.float16, np.uint8, np.int32,
                                 np.int64)  # fmt: skip
_SCATTER_WEIGHTED_SUM = KernelTypes.of("utility_ops.cc", np.float32)
_SCATTER_INDICES = KernelTypes.of("utility_ops.h", np.int32, np.int64)


def _in_place(ctx: OpContext) -> None:
    """Caffe2's scatter ops update their first input: CAFFE_ENFORCE_EQ(&X0, output, "In place
    operation is required") (utility_ops.h)."""
    op = ctx.op
    if not op.output or op.output[0] != op.input[0]:
        written = op.output[0] if op.output else "nothing"
        raise ctx.error(
            f"In place operation is required: output 0 must be input 0 {op.input[0]!r}, "
            f"not {written!r} (caffe2/operators/utility_ops.h)"
        )


@caffe2_op("ScatterAssign")
def scatter_assign(ctx: OpContext) -> list[np.ndarray]:
    # DATA[INDICES[i]] = SLICES[i]; Caffe2 runs it in place on DATA.
    _in_place(ctx)
    data, indices, slices = ctx.input(0), ctx.input(1), ctx.input(2)
    _SCATTER_ASSIGN.check(ctx, data, "DATA (input 0)")
    _SCATTER_INDICES.check(ctx, indices, "INDICES (input 1)")
    if slices.dtype != data.dtype:
        raise ctx.error(f"Data and slice types must match: {data.dtype} and {slices.dtype}")
    flat = np.asarray(indices).reshape(-1).astype(np.int64)
    if ((flat < 0) | (flat >= data.shape[0])).any():
        raise ctx.error(f"an index is outside [0, {data.shape[0]})")
    rows = np.asarray(slices).reshape((flat.size, *data.shape[1:]))
    out = data.copy()
    out[flat] = rows.astype(data.dtype)
    return [out]


@caffe2_op("ScatterWeightedSum")
def scatter_weighted_sum(ctx: OpContext) -> list[np.ndarray]:
    # As utility_ops.h: every indexed row of X0 is scaled by w0 (a repeated index once per
    # occurrence; skipped where w0 is 1), then each pair adds wk * Xk[i] to row INDICES[i], in
    # order.
    if ctx.num_inputs < 5 or ctx.num_inputs % 2 == 0:
        raise ctx.error("takes X0, Weight0, INDICES, then pairs of slices and weights")
    _in_place(ctx)
    _SCATTER_WEIGHTED_SUM.check(ctx, ctx.input(0), "X0 (input 0)")
    _SCATTER_INDICES.check(ctx, ctx.input(2), "INDICES (input 2)")
    out = ctx.input(0).copy()
    weight0 = float(np.asarray(ctx.input(1)).reshape(-1)[0])
    flat = np.asarray(ctx.input(2)).reshape(-1).astype(np.int64)
    if ((flat < 0) | (flat >= out.shape[0])).any():
        raise ctx.error(f"an index is outside [0, {out.shape[0]})")
    pairs = [
        (
            np.asarray(ctx.input(i)).reshape((flat.size, *out.shape[1:])),
            float(np.asarray(ctx.input(i + 1)).reshape(-1)[0]),
        )
        for i in range(3, ctx.num_inputs, 2)
    ]
    if weight0 != 1.0:
        for row in flat:
            out[row] = out[row] * out.dtype.type(weight0)
    for slices, weight in pairs:
        for position, row in enumerate(flat):
            out[row] = out[row] + slices[position] * out.dtype.type(weight)
    return [out]


@caffe2_op("BooleanMask")
def boolean_mask(ctx: OpContext) -> list[np.ndarray]:
    data, mask = ctx.input(0), np.asarray(ctx.input(1))
    if mask.ndim != 1 or mask.shape[0] != data.shape[0]:
        raise ctx.error(f"mask {mask.shape} must be 1-D with the data's {data.shape[0]} rows")
    keep = mask.astype(np.bool_)
    return [data[keep], np.nonzero(keep)[0].astype(np.int32)]
