"""Indexing: GatherElements, GatherND, ScatterElements, ScatterND, OneHot, NonZero, TopK, CumSum,
Trilu, EyeLike, TensorScatter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import normalized_axes, scalar_like
from unframe.backends.coreml.registry import ops

#: ONNX scatter reductions and MIL's scatter modes.
_SCATTER_MODES = {"none": "update", "add": "add", "mul": "mul", "max": "max", "min": "min"}


def _axis_length(ctx: ExportContext, index: int, axis: int) -> Any:
    """The length of input ``index``'s ``axis``: an int where known, else a run-time scalar."""
    length = (ctx.input_shape(index) or ())[axis]
    if length is not None:
        return np.int32(length)
    return ctx.mb.gather(x=ctx.mb.shape(x=ctx.input(index)), indices=np.int32(axis), axis=0)


def _wrapped_indices(ctx: ExportContext, index: int, length: Any) -> Any:
    """Input ``index`` (indices) with the negative ones counted from the end of ``length``."""
    known = ctx.constant_input(index)
    if known is not None and isinstance(length, np.integer):
        return ctx.make_constant(np.where(known < 0, known + int(length), known).astype(np.int32))
    mb, indices = ctx.mb, ctx.input(index)
    return mb.select(
        cond=mb.less(x=indices, y=np.int32(0)), a=mb.add(x=indices, y=length), b=indices
    )


def _axis(ctx: ExportContext) -> int:
    return normalized_axes([int(ctx.attr("axis", 0))], ctx.input_rank(0))[0]


@ops.register("GatherElements", since=11)
def gather_elements_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    axis = _axis(ctx)
    indices = _wrapped_indices(ctx, 1, _axis_length(ctx, 0, axis))
    return [ctx.mb.gather_along_axis(x=ctx.input(0), indices=indices, axis=axis)]


@ops.register("GatherND", since=11)
def gather_nd_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    batch_dims = int(ctx.attr("batch_dims", 0))
    return [ctx.mb.gather_nd(x=ctx.input(0), indices=ctx.input(1), batch_dims=batch_dims)]


def _scatter_mode(ctx: ExportContext) -> str:
    reduction = str(ctx.attr("reduction", "none"))
    mode = _SCATTER_MODES.get(reduction)
    if mode is None:
        raise ctx.error(f"reduction={reduction!r}")
    return mode


@ops.register("Scatter", since=9)
@ops.register("ScatterElements", since=11)
def scatter_elements_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    axis = _axis(ctx)
    indices = _wrapped_indices(ctx, 1, _axis_length(ctx, 0, axis))
    return [
        ctx.mb.scatter_along_axis(
            data=ctx.input(0),
            indices=indices,
            updates=ctx.input(2),
            axis=axis,
            mode=_scatter_mode(ctx),
        )
    ]


@ops.register("ScatterND", since=11)
def scatter_nd_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    return [
        ctx.mb.scatter_nd(
            data=ctx.input(0), indices=ctx.input(1), updates=ctx.input(2), mode=_scatter_mode(ctx)
        )
    ]


@ops.register("NonZero", since=9)
def non_zero_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    # MIL lists each nonzero element's coordinates as a row; ONNX as a column.
    return [ctx.mb.transpose(x=ctx.mb.non_zero(x=ctx.input(0)), perm=[1, 0])]


@ops.register("OneHot", since=9)
def one_hot_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    mb = ctx.mb
    rank = ctx.input_rank(0)
    axis = normalized_axes([int(ctx.attr("axis", -1))], rank + 1)[0]
    indices = ctx.input(0)
    if ctx.mil_dtype(ctx.input_dtype(0)) != "int32":
        indices = mb.cast(x=indices, dtype="int32")  # ONNX takes float indices too
    known_depth = ctx.constant_input(1)
    if known_depth is not None:
        depth: Any = np.int32(int(np.asarray(known_depth).reshape(-1)[0]))
        classes: Any = np.arange(int(depth), dtype=np.int32)
    else:
        depth = ctx.input(1)
        if ctx.input_rank(1):
            depth = mb.squeeze(x=depth, axes=[0])
        if ctx.mil_dtype(ctx.input_dtype(1)) != "int32":
            depth = mb.cast(x=depth, dtype="int32")
        classes = mb.range_1d(start=np.int32(0), end=depth, step=np.int32(1))
    indices = mb.select(
        cond=mb.less(x=indices, y=np.int32(0)), a=mb.add(x=indices, y=depth), b=indices
    )
    spread = [1] * (rank + 1)
    spread[axis] = -1
    hits = mb.equal(x=mb.expand_dims(x=indices, axes=[axis]), y=mb.reshape(x=classes, shape=spread))
    values = ctx.constant_input(2)
    if values is not None:
        off, on = (ctx.make_constant(np.asarray(v)) for v in np.asarray(values).reshape(-1)[:2])
    else:
        off = mb.gather(x=ctx.input(2), indices=np.int32(0), axis=0)
        on = mb.gather(x=ctx.input(2), indices=np.int32(1), axis=0)
    return [mb.select(cond=hits, a=on, b=off)]


@ops.register("TopK", since=10)
def topk_v10(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    axis = normalized_axes([int(ctx.attr("axis", -1))], ctx.input_rank(0))[0]
    k = ctx.ints(1)
    if k is None:
        # k at run time, but the output's length along the axis is declared: that is k.
        out_shape = node.outputs[0].shape
        declared = out_shape[axis] if out_shape is not None else None
        if not isinstance(declared, int):
            raise ctx.error("k computed at run time, and the output's length along axis unknown")
        k = [declared]
    ascending = not bool(ctx.attr("largest", 1))
    values, indices = ctx.mb.topk(x=ctx.input(0), k=int(k[0]), axis=axis, ascending=ascending)
    return [values, indices]


@ops.register("CumSum", since=11)
def cumsum_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    mb = ctx.mb
    flags = {
        "exclusive": bool(ctx.attr("exclusive", 0)),
        "reverse": bool(ctx.attr("reverse", 0)),
    }
    axis = ctx.ints(1)
    if axis is not None:
        return [mb.cumsum(x=ctx.input(0), axis=int(axis[0]), **flags)]
    # An axis given at run time: the sums along every axis, the one asked for picked by select.
    rank = ctx.input_rank(0)
    wanted = mb.reshape(x=ctx.input(1), shape=[1])
    wanted = mb.select(
        cond=mb.less(x=wanted, y=np.int32(0)), a=mb.add(x=wanted, y=np.int32(rank)), b=wanted
    )
    result = mb.cumsum(x=ctx.input(0), axis=0, **flags)
    for candidate in range(1, rank):
        summed = mb.cumsum(x=ctx.input(0), axis=candidate, **flags)
        result = mb.select(cond=mb.equal(x=wanted, y=np.int32(candidate)), a=summed, b=result)
    return [result]


def _cumulative_product(ctx: ExportContext, axis: int, exclusive: bool, reverse: bool) -> Any:
    """Products along ``axis`` slice by slice (MIL has no cumprod; a log-sum would round)."""
    mb = ctx.mb
    shape = ctx.input_shape(0) or ()
    length = shape[axis]
    if length is None or any(d is None for d in shape):
        raise ctx.error("a cumulative product over a tensor whose shape is unknown before run time")
    x = ctx.input(0)
    pieces = list(mb.split(x=x, num_splits=length, axis=axis)) if length > 1 else [x]
    one_shape = [int(d) for d in shape]  # type: ignore[arg-type]
    one_shape[axis] = 1
    word = ctx.mil_dtype(ctx.input_dtype(0))
    one = ctx.make_constant(np.ones(one_shape, np.int32 if word == "int32" else np.float32))
    products: list[Any] = [None] * length
    running: Any = None
    for position in reversed(range(length)) if reverse else range(length):
        if exclusive:
            products[position] = one if running is None else running
        running = pieces[position] if running is None else mb.mul(x=running, y=pieces[position])
        if not exclusive:
            products[position] = running
    return products[0] if length == 1 else mb.concat(values=products, axis=axis)


@ops.register("CumProd", since=26)
def cumprod_v26(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    mb = ctx.mb
    flags = {"exclusive": bool(ctx.attr("exclusive", 0)), "reverse": bool(ctx.attr("reverse", 0))}
    rank = ctx.input_rank(0)
    axis = ctx.ints(1)
    if axis is not None:
        return [_cumulative_product(ctx, normalized_axes([axis[0]], rank)[0], **flags)]
    # An axis given at run time: the products along every axis, the one asked for picked.
    wanted = mb.reshape(x=ctx.input(1), shape=[1])
    wanted = mb.select(
        cond=mb.less(x=wanted, y=np.int32(0)), a=mb.add(x=wanted, y=np.int32(rank)), b=wanted
    )
    result = _cumulative_product(ctx, 0, **flags)
    for candidate in range(1, rank):
        product = _cumulative_product(ctx, candidate, **flags)
        result = mb.select(cond=mb.equal(x=wanted, y=np.int32(candidate)), a=product, b=result)
    return [result]


@ops.register("Trilu", since=14)
def trilu_v14(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """Keeps the elements on and above (upper) or below (lower) the k-th diagonal."""
    mb = ctx.mb
    ctx.mil_dtype(ctx.input_dtype(0))
    dims = ctx.input_shape(0)
    if dims is None or len(dims) < 2:
        raise ctx.error("an input of rank under 2 or unknown")
    rank = len(dims)
    k_known = ctx.ints(1) if ctx.has_input(1) else [0]
    k: Any = np.int32(k_known[0]) if k_known is not None else ctx.input(1)
    rows, cols = (_positions(ctx, rank - 2, [-1, 1]), _positions(ctx, rank - 1, [1, -1]))
    offset: Any = mb.sub(x=cols, y=rows)
    if isinstance(offset, np.ndarray) and isinstance(k, np.integer):
        keep: Any = offset >= k if ctx.attr("upper", 1) else offset <= k
    elif ctx.attr("upper", 1):
        keep = mb.greater_equal(x=offset, y=k)
    else:
        keep = mb.less_equal(x=offset, y=k)
    zero = scalar_like(ctx, 0)
    return [mb.select(cond=keep, a=ctx.input(0), b=zero)]


def _positions(ctx: ExportContext, axis: int, shape: list[int]) -> Any:
    """0, 1, ... along ``axis`` of input 0, reshaped to ``shape`` (a column or a row)."""
    length = _axis_length(ctx, 0, axis)
    if isinstance(length, np.integer):
        return np.arange(int(length), dtype=np.int32).reshape(shape)
    positions = ctx.mb.range_1d(start=np.int32(0), end=length, step=np.int32(1))
    return ctx.mb.reshape(x=positions, shape=shape)


@ops.register("EyeLike", since=9)
def eye_like_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    dims = ctx.input_shape(0)
    if dims is None or len(dims) != 2 or None in dims:
        raise ctx.error("an input whose 2-D shape is unknown before run time")
    wanted = ctx.attr("dtype", None)
    dtype = ir.DataType(int(wanted)) if wanted is not None else ctx.input_dtype(0)
    ctx.mil_dtype(dtype)
    numpy_type = dtype.numpy() if dtype is not None else np.float32
    rows, cols = (int(d) for d in dims if d is not None)
    return [ctx.make_constant(np.eye(rows, cols, int(ctx.attr("k", 0)), dtype=numpy_type))]


@ops.register("Compress", since=9)
def compress_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """The slices along ``axis`` (of the flattened input without one) where condition is true."""
    mb = ctx.mb
    ctx.mil_dtype(ctx.input_dtype(0))
    known = ctx.constant_input(1)
    if known is not None:
        picked: Any = np.flatnonzero(known).astype(np.int32)
    else:
        picked = mb.reshape(x=mb.non_zero(x=ctx.input(1)), shape=[-1])
    axis = ctx.attr("axis", None)
    if axis is None:
        return [mb.gather(x=mb.reshape(x=ctx.input(0), shape=[-1]), indices=picked, axis=0)]
    return [mb.gather(x=ctx.input(0), indices=picked, axis=int(axis))]


@ops.register("ReverseSequence", since=10)
def reverse_sequence_v10(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    return [
        ctx.mb.reverse_sequence(
            x=ctx.input(0),
            lengths=ctx.input(1),
            seq_axis=int(ctx.attr("time_axis", 0)),
            batch_axis=int(ctx.attr("batch_axis", 1)),
        )
    ]


@ops.register("TensorScatter", since=24)
def tensor_scatter_v24(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """The update written into the cache along ``axis`` from each batch row's write index.

    Each cache position ``p`` reads update position ``p - w`` (``(p - w) mod S`` in circular
    mode) where that lies in ``[0, s)``, else keeps the past: a gather and a select, so no
    scatter with positions computed at run time is needed.
    """
    ctx.mil_dtype(ctx.input_dtype(0))
    mb = ctx.mb
    past, update = ctx.input_shape(0), ctx.input_shape(1)
    if past is None or update is None or any(d is None for d in (*past, *update)):
        raise ctx.error("a cache or update of a shape unknown before run time")
    rank = len(past)
    axis = normalized_axes([int(ctx.attr("axis", -2))], rank)[0]
    if axis == 0:
        raise ctx.error("axis 0: the batch axis cannot be the sequence axis")
    mode = str(ctx.attr("mode", "linear"))
    if mode not in ("linear", "circular"):
        raise ctx.error(f"mode={mode!r}: ONNX's TensorScatter is linear or circular")
    cache_length, update_length = int(past[axis] or 0), int(update[axis] or 0)
    # Positions along the sequence axis, shaped to broadcast against [batch, 1, ..., 1].
    position_shape = [1] * rank
    position_shape[axis] = cache_length
    positions = np.arange(cache_length, dtype=np.int32).reshape(position_shape)
    if ctx.has_input(2):
        writes = ctx.input(2)
        if ctx.mil_dtype(ctx.input_dtype(2)) != "int32":
            writes = mb.cast(x=writes, dtype="int32")
        writes = mb.reshape(x=writes, shape=[-1] + [1] * (rank - 1))
        offsets = mb.sub(x=positions, y=writes)
    else:
        offsets = ctx.make_constant(positions)
    if mode == "circular":
        offsets = mb.mod(x=offsets, y=np.int32(cache_length))
    inside = mb.logical_and(
        x=mb.greater_equal(x=offsets, y=np.int32(0)),
        y=mb.less(x=offsets, y=np.int32(update_length)),
    )
    # gather_along_axis takes indices of the output's full shape.
    full = [int(d or 0) for d in past]
    zeros = np.zeros(full, np.int32)
    clamped = mb.minimum(x=mb.maximum(x=offsets, y=np.int32(0)), y=np.int32(update_length - 1))
    indices = mb.add(x=clamped, y=zeros)
    written = mb.gather_along_axis(x=ctx.input(1), indices=indices, axis=axis)
    return [mb.select(cond=inside, a=written, b=ctx.input(0))]
