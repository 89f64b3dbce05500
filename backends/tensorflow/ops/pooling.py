"""Pooling: MaxPool (with Indices), AveragePool, LpPool, MaxUnpool and the global pools.

Pools run channels-last, like Conv. The common case is TF's own pooling kernel; where TF's has no
equivalent (dilations, MaxPool's Indices output, LpPool) the windows are gathered axis by axis
(one gather of ``kernel`` taps per output position, indices computed when the model is
converted) and reduced, which is exact for max and sum because both are separable.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    Physical,
    channels_last,
    ir,
    np,
    ops,
    wrap,
)
from unframe.backends.tensorflow.ops.nn import (
    _pad_spatial,
    _rank_and_spatial,
    _resolve_pads,
    _spatial_attrs,
)


def _output_unused(node: ir.Node, index: int) -> bool:
    if len(node.outputs) <= index:
        return True
    output = node.outputs[index]
    graph_outputs = node.graph.outputs if node.graph is not None else []
    return not output.uses() and not any(output is o for o in graph_outputs)


def _window_view(
    ctx: ExportContext, padded: Any, kernel: list[int], strides: list[int], dilations: list[int]
) -> tuple[Any, list[int]]:
    """``padded`` (N, D1.., C) as (N, o1, k1, o2, k2, .., C): every window's taps, one gather
    per spatial axis; and the output sizes."""
    tf = ctx.tf
    sizes = padded.shape.as_list()[1:-1]
    if any(size is None for size in sizes):
        raise ctx.error("this pooling needs static spatial sizes")
    view = padded
    outs = []
    for i, (size, k, s, d) in enumerate(zip(sizes, kernel, strides, dilations, strict=True)):
        out = (size - ((k - 1) * d + 1)) // s + 1
        outs.append(out)
        taps = np.arange(out)[:, None] * s + np.arange(k)[None, :] * d
        axis = 1 + 2 * i
        gathered = tf.gather(view, ctx.make_constant(taps.reshape(-1).astype(np.int32)), axis=axis)
        dims = tf.shape(gathered)
        view = tf.reshape(gathered, tf.concat([dims[:axis], [out, k], dims[axis + 1 :]], 0))
    return view, outs


def _kernel_axes(spatial: int) -> list[int]:
    return [2 + 2 * i for i in range(spatial)]


class _Pooling(NamedTuple):
    """What every windowed pool reads alike: its channels-last input and its window."""

    x: Any
    rank: int
    spatial: int
    kernel: list[int]
    attrs: dict[str, Any]
    #: (begin, end) per spatial axis, ceil_mode's extra end included.
    pads: list[tuple[int, int]]


def _read_pooling(ctx: ExportContext) -> _Pooling:
    rank, spatial = _rank_and_spatial(ctx)
    kernel = ctx.ints("kernel_shape")
    attrs = _spatial_attrs(ctx, spatial, kernel)
    x = ctx.channels_last(0)
    pads = _resolve_pads(ctx, x, attrs, ceil_mode=bool(ctx.attr("ceil_mode", 0)))
    return _Pooling(x, rank, spatial, kernel, attrs, pads)


@ops.register("MaxPool", since=1)  # later opsets add attributes whose defaults are the old rule
@ops.register("MaxPool", since=8)
@ops.register("MaxPool", since=10)
@ops.register("MaxPool", since=11)
@ops.register("MaxPool", since=12)
def max_pool_v12(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x, rank, spatial, kernel, attrs, pads = _read_pooling(ctx)
    lowest = float(x.dtype.min) if x.dtype.is_floating else int(x.dtype.min)
    padded = _pad_spatial(ctx, x, pads, lowest)
    layout = channels_last(rank)
    want_indices = not _output_unused(node, 1)
    if not want_indices and all(d == 1 for d in attrs["dilations"]):
        result = tf.nn.max_pool(padded, kernel, attrs["strides"], "VALID")
        return [Physical(result, layout), None]
    view, outs = _window_view(ctx, padded, kernel, attrs["strides"], attrs["dilations"])
    values = tf.reduce_max(view, axis=_kernel_axes(spatial))
    if not want_indices:
        return [Physical(values, layout), None]
    indices = _argmax_indices(ctx, x, view, outs, kernel, attrs, pads)
    return [Physical(values, layout), Physical(indices, layout)]


def _argmax_indices(
    ctx: ExportContext,
    x: Any,
    view: Any,
    outs: list[int],
    kernel: list[int],
    attrs: dict[str, Any],
    pads: list[tuple[int, int]],
) -> Any:
    """ONNX's Indices: each maximum's offset in the flattened NCHW input (row-major, or
    column-major over the two spatial axes where storage_order is 1)."""
    tf = ctx.tf
    spatial = len(kernel)
    # (N, o1, k1, .., C) -> (N, o1.., C, k1..) -> argmax over the flattened window.
    outer = [0, *[1 + 2 * i for i in range(spatial)], 1 + 2 * spatial]
    moved = tf.transpose(view, [*outer, *_kernel_axes(spatial)])
    dims = tf.shape(moved)
    flat = tf.reshape(moved, tf.concat([dims[: spatial + 2], [math.prod(kernel)]], 0))
    # int32 for the window arithmetic (TFLite's FloorDiv/FloorMod have no int64), int64 for
    # the flat offsets.
    best = tf.argmax(flat, axis=-1, output_type=tf.int32)
    sizes = [int(v) for v in x.shape.as_list()[1:-1]]
    positions: list[Any] = []
    remaining = best
    for i in reversed(range(spatial)):
        tap = remaining % kernel[i]
        remaining = remaining // kernel[i]
        shape = [1] * (spatial + 2)
        shape[1 + i] = outs[i]
        start = np.arange(outs[i]) * attrs["strides"][i] - pads[i][0]
        origin = ctx.make_constant(start.reshape(shape).astype(np.int64), "origin")
        positions.insert(0, origin + tf.cast(tap * attrs["dilations"][i], tf.int64))
    channels = tf.cast(tf.shape(x)[-1], tf.int64)
    batch_index = tf.range(tf.cast(tf.shape(x)[0], tf.int64))
    channel_index = tf.range(channels)
    base = (
        tf.reshape(batch_index, [-1] + [1] * (spatial + 1)) * channels
        + tf.reshape(channel_index, [1] * (spatial + 1) + [-1])
    ) * math.prod(sizes)
    if int(ctx.attr("storage_order", 0)) and spatial == 2:
        offset = positions[1] * sizes[0] + positions[0]
    else:
        offset = tf.zeros_like(positions[0])
        for position, size in zip(positions, sizes, strict=True):
            offset = offset * size + position
    return base + offset


@ops.register("AveragePool", since=1)  # later opsets add attributes whose defaults are the old rule
@ops.register("AveragePool", since=7)
@ops.register("AveragePool", since=10)
@ops.register("AveragePool", since=11)
def average_pool_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x, rank, spatial, kernel, attrs, pads = _read_pooling(ctx)
    dilated = any(d != 1 for d in attrs["dilations"])
    explicit = _resolve_pads(ctx, x, attrs)
    include_pad = bool(ctx.attr("count_include_pad", 0))
    strides = attrs["strides"]
    if not dilated and not any(b or e for b, e in pads):
        return [Physical(tf.nn.avg_pool(x, kernel, strides, "VALID"), channels_last(rank))]
    window = float(math.prod(kernel))

    def window_sum(tensor: Any) -> Any:
        if dilated:
            view, _ = _window_view(ctx, tensor, kernel, strides, attrs["dilations"])
            return tf.reduce_sum(view, axis=_kernel_axes(spatial))
        return tf.nn.avg_pool(tensor, kernel, strides, "VALID") * window

    total = window_sum(_pad_spatial(ctx, x, pads, 0.0))
    # How many cells of each window count: the input's, plus the explicit pads where
    # count_include_pad says so; never ceil_mode's extra end.
    ones = tf.ones_like(x[:1, ..., :1])
    if include_pad:
        ones = _pad_spatial(ctx, ones, explicit, 1.0)
        extra = [(0, e - ee) for (_, e), (_, ee) in zip(pads, explicit, strict=True)]
        counted = _pad_spatial(ctx, ones, extra, 0.0)
    else:
        counted = _pad_spatial(ctx, ones, pads, 0.0)
    return [Physical(total / window_sum(counted), channels_last(rank))]


@ops.register("LpPool", since=2)
def lp_pool_v2(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x, rank, spatial, kernel, attrs, pads = _read_pooling(ctx)
    p = float(ctx.attr("p", 2))
    view, _ = _window_view(
        ctx, _pad_spatial(ctx, x, pads, 0.0), kernel, attrs["strides"], attrs["dilations"]
    )
    powered = tf.pow(tf.abs(view), p)
    result = tf.pow(tf.reduce_sum(powered, axis=_kernel_axes(spatial)), 1.0 / p)
    return [Physical(result, channels_last(rank))]


@ops.register("MaxUnpool", since=9)
def max_unpool_v9(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    rank, spatial = _rank_and_spatial(ctx)
    x = ctx.input(0)
    indices = tf.cast(ctx.input(1), tf.int64)
    kernel = ctx.ints("kernel_shape")
    strides = ctx.ints("strides", [1] * spatial) or [1] * spatial
    pads = ctx.ints("pads", [0] * 2 * spatial) or [0] * 2 * spatial
    dims = tf.shape(x, out_type=tf.int64)
    spatial_out = [
        (dims[2 + i] - 1) * strides[i] + kernel[i] - pads[i] - pads[spatial + i]
        for i in range(spatial)
    ]
    inferred = tf.stack([dims[0], dims[1], *spatial_out])
    # Indices address the inferred shape; a larger output_shape pads at the end (as onnx's
    # reference does).
    flat = tf.scatter_nd(
        tf.reshape(indices, [-1, 1]), tf.reshape(x, [-1]), tf.reshape(tf.reduce_prod(inferred), [1])
    )
    result = tf.reshape(flat, inferred)
    if ctx.has_input(2):
        wanted = tf.cast(tf.reshape(ctx.input(2), [-1]), tf.int64)
        result = tf.pad(result, tf.stack([tf.zeros_like(wanted), wanted - inferred], axis=1))
    return [result]


def _global_pool(ctx: ExportContext, reduce: Any) -> Outputs:
    held = ctx.physical(0)
    rank = len(held.tensor.shape)
    axes = [held.physical_axis(axis) for axis in range(2, rank)]
    return [wrap(reduce(held.tensor, axis=axes, keepdims=True), held.perm)]


@ops.register("GlobalAveragePool", since=1)
def global_average_pool_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _global_pool(ctx, ctx.tf.reduce_mean)


@ops.register("GlobalMaxPool", since=1)
def global_max_pool_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _global_pool(ctx, ctx.tf.reduce_max)


@ops.register("GlobalLpPool", since=2)
def global_lp_pool_v2(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    p = float(ctx.attr("p", 2))
    return _global_pool(
        ctx,
        lambda t, axis, keepdims: tf.pow(
            tf.reduce_sum(tf.pow(tf.abs(t), p), axis=axis, keepdims=keepdims), 1.0 / p
        ),
    )
