"""Index-driven ops built from Caffe2's Gather, ScatterAssign and comparisons (static shapes):
OneHot, MaxUnpool, ReverseSequence, and ai.onnx.ml's Binarizer and ArrayFeatureExtractor."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.export.context import ExportContext, caffe2_dtype
from unframe.backends.caffe2.export.ops import _runtime as runtime
from unframe.backends.caffe2.export.ops._common import (
    attr_float,
    attr_int,
    attr_ints,
    normalize_axis,
    required,
    reshape,
)
from unframe.backends.caffe2.export.registry import ops


@ops.register("OneHot", since=9)
def one_hot_v9(node: ir.Node, ctx: ExportContext) -> None:
    indices = required(ctx, node, 0)
    shape = ctx.need_shape(indices, "to place the one-hot axis")
    axis = normalize_axis(ctx, attr_int(node, "axis", -1), len(shape) + 1)
    depth_value = ctx.const(node.inputs[1])
    targets_shape = [1] * (len(shape) + 1)
    if depth_value is not None:
        depth = int(depth_value.reshape(-1)[0])
        depth_blob = ctx.constant(np.array(depth, dtype=np.float64), "depth")
        targets_shape[axis] = depth
        positions = np.arange(depth, dtype=np.float64).reshape(targets_shape)
        targets = ctx.constant(positions, "targets")
    else:
        # A run-time depth (any numeric type, truncated to an integer as ONNX says).
        depth_input = required(ctx, node, 1)
        whole = ctx.temp(
            "Cast", [ctx.blob(depth_input)], "depth", to=caffe2_dtype(ir.DataType.INT64)
        )
        scalar = runtime.scalar_of(ctx, depth_input, whole)
        depth_blob = ctx.temp("Cast", [scalar], "depth", to=caffe2_dtype(ir.DataType.DOUBLE))
        zero, one = ctx.constant(np.array(0.0), "zero"), ctx.constant(np.array(1.0), "one")
        targets_shape[axis] = -1
        targets = reshape(ctx, ctx.temp("Range", [zero, depth_blob, one], "targets"), targets_shape)
    # Negative indices count from the end; out-of-range ones match no position.
    value = ctx.temp("Cast", [ctx.blob(indices)], "indices", to=caffe2_dtype(ir.DataType.DOUBLE))
    negative = ctx.temp("LT", [value, ctx.constant(np.array(0.0), "zero")], "negative")
    shifted = ctx.temp("Add", [value, depth_blob], "shifted")
    wrapped = ctx.temp("Where", [negative, shifted, value], "wrapped")
    column = ctx.temp("ExpandDims", [wrapped], "column", dims=[axis])
    hot = ctx.temp("EQ", [column, targets], "hot")
    shape_blob = ctx.temp("Shape", [hot], "shape")
    pair = ctx.input(node, 2)
    off = ctx.temp("Expand", [ctx.temp("Slice", [pair], "off", starts=[0], ends=[1]), shape_blob])
    on = ctx.temp("Expand", [ctx.temp("Slice", [pair], "on", starts=[1], ends=[2]), shape_blob])
    ctx.emit("Where", [hot, on, off], [ctx.output(node)])


@ops.register("MaxUnpool", since=11)
def max_unpool_v11(node: ir.Node, ctx: ExportContext) -> None:
    x = required(ctx, node, 0)
    in_shape = ctx.need_shape(x, "for the output size")
    kernel = attr_ints(node, "kernel_shape") or []
    spatial = len(kernel)
    strides = attr_ints(node, "strides") or [1] * spatial
    pads = attr_ints(node, "pads") or [0] * (2 * spatial)
    default = tuple(in_shape[:2]) + tuple(
        (in_shape[2 + i] - 1) * strides[i] + kernel[i] - pads[i] - pads[spatial + i]
        for i in range(spatial)
    )
    final = ctx.shape(node.outputs[0])
    if final is None and ctx.has_input(node, 2):
        final = tuple(int(d) for d in ctx.need_const(node.inputs[2], "output_shape"))
    final = final or default
    if any(f < d for f, d in zip(final, default, strict=True)):
        raise ctx.error("an output_shape smaller than the pooled input has no exact form")
    out_shape = default
    # MaxPool's indices are flat positions in its input, which is MaxUnpool's output.
    dtype = ctx.dtype(x) or ir.DataType.FLOAT
    size = int(np.prod(out_shape))
    work = ctx.temp(
        "ConstantFill", [], "unpooled", shape=[size], value=0.0, dtype=caffe2_dtype(dtype)
    )
    positions = reshape(ctx, ctx.input(node, 1), [-1])
    ctx.emit("ScatterAssign", [work, positions, reshape(ctx, ctx.blob(x), [-1])], [work])
    blob = reshape(ctx, work, list(out_shape))
    # A larger output_shape keeps the unpooled values at the start of each axis.
    current = list(out_shape)
    for axis, (want, have) in enumerate(zip(final, out_shape, strict=True)):
        if want > have:
            block = list(current)
            block[axis] = want - have
            zeros = ctx.constant(np.zeros(block, dtype=dtype.numpy()), "zeros")
            grown = ctx.fresh("grown")
            ctx.emit("Concat", [blob, zeros], [grown, ctx.fresh("split_info")], axis=axis)
            blob, current[axis] = grown, want
    ctx.emit("Copy", [blob], [ctx.output(node)])


@ops.register("ReverseSequence", since=10)
def reverse_sequence_v10(node: ir.Node, ctx: ExportContext) -> None:
    shape = ctx.need_shape(node.inputs[0], "to reverse it")
    time_axis, batch_axis = attr_int(node, "time_axis", 0), attr_int(node, "batch_axis", 1)
    if {time_axis, batch_axis} != {0, 1}:
        raise ctx.error("time_axis and batch_axis must be 0 and 1")
    steps, batch = shape[time_axis], shape[batch_axis]
    grid = np.indices((shape[0], shape[1]), dtype=np.int64)
    t_grid, b_grid = grid[time_axis], grid[batch_axis]
    lengths = ctx.input(node, 1)
    if ctx.dtype(node.inputs[1]) != ir.DataType.INT64:
        lengths = ctx.temp("Cast", [lengths], "lengths", to=caffe2_dtype(ir.DataType.INT64))
    lengths = reshape(ctx, lengths, [1, batch] if batch_axis == 1 else [batch, 1])
    t_blob = ctx.constant(t_grid, "t")
    inside = ctx.temp("LT", [t_blob, lengths], "inside")
    one = ctx.constant(np.array(1, dtype=np.int64), "one")
    mirrored = ctx.temp("Sub", [ctx.temp("Sub", [lengths, one]), t_blob], "mirrored")
    source = ctx.temp("Where", [inside, mirrored, t_blob], "source")
    # Row of x[t, b] (or x[b, t]) in x reshaped to [T * B, rest].
    if time_axis == 0:
        rows = ctx.temp("Mul", [source, ctx.constant(np.array(batch, np.int64), "batch")])
        rows = ctx.temp("Add", [rows, ctx.constant(b_grid, "b")], "rows")
    else:
        rows = ctx.temp("Add", [ctx.constant(b_grid * steps, "b"), source], "rows")
    table = reshape(ctx, ctx.input(node, 0), [steps * batch, *shape[2:]])
    gathered = ctx.temp("Gather", [table, rows], "gathered")
    reshape(ctx, gathered, list(shape), ctx.output(node))


@ops.register("Binarizer", since=1, domain="ai.onnx.ml")
def binarizer_v1(node: ir.Node, ctx: ExportContext) -> None:
    x = required(ctx, node, 0)
    dtype = ctx.dtype(x) or ir.DataType.FLOAT
    above = ctx.temp("GT", [ctx.blob(x), ctx.scalar(attr_float(node, "threshold", 0.0), x)])
    ctx.emit("Cast", [above], [ctx.output(node)], to=caffe2_dtype(dtype))


@ops.register("ArrayFeatureExtractor", since=1, domain="ai.onnx.ml")
def array_feature_extractor_v1(node: ir.Node, ctx: ExportContext) -> None:
    rank = ctx.need_rank(node.inputs[0])
    indices = reshape(ctx, ctx.input(node, 1), [-1])
    ctx.emit("Gather", [ctx.input(node, 0), indices], [ctx.output(node)], axis=rank - 1)


@ops.register("NonZero", since=9)
def non_zero_v9(node: ir.Node, ctx: ExportContext) -> None:
    """The flat positions BooleanMask keeps, unravelled into one row of coordinates per axis."""
    x = required(ctx, node, 0)
    shape = ctx.need_shape(x, "to unravel the positions")
    size = int(np.prod(shape))
    if not shape or not size:
        raise ctx.error("a scalar or empty input has no Caffe2 form here")
    flat = reshape(ctx, ctx.blob(x), [-1])
    mask = ctx.temp("Cast", [flat], "mask", to=caffe2_dtype(ir.DataType.BOOL))
    every = ctx.constant(np.arange(size, dtype=np.int64), "positions")
    positions = ctx.temp("BooleanMask", [every, mask], "positions")
    rows = []
    stride = size
    for axis, dim in enumerate(shape):
        stride //= dim
        index = ctx.temp("Div", [positions, runtime.const64(ctx, stride)], "index")
        if axis:  # the first coordinate is below its dim already
            index = ctx.temp("Mod", [index], "index", divisor=dim, sign_follow_divisor=1)
        rows.append(ctx.temp("ExpandDims", [index], "row", dims=[0]))
    ctx.emit("Concat", rows, [ctx.output(node), ctx.fresh("split_info")], axis=0)
