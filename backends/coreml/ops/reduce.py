"""Reductions: ReduceMean/Sum/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp, ArgMax, ArgMin."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import normalized_axes, require_float, scalar_like
from unframe.backends.coreml.registry import ops

_REDUCTIONS = {
    "ReduceMean": "reduce_mean",
    "ReduceSum": "reduce_sum",
    "ReduceMax": "reduce_max",
    "ReduceMin": "reduce_min",
    "ReduceProd": "reduce_prod",
    "ReduceL1": "reduce_l1_norm",
    "ReduceL2": "reduce_l2_norm",
    "ReduceSumSquare": "reduce_sum_square",
    "ReduceLogSum": "reduce_log_sum",
    "ReduceLogSumExp": "reduce_log_sum_exp",
}

#: How a reduction over several axes is one reduction per axis in turn, for axes known only at
#: run time: (what is done to the input first, the per-axis MIL reduction, what is done last).
#: Sums of squares and logs of sums are not sums of sums of squares / logs of logs; the others
#: compose with themselves.
_ONE_AXIS_AT_A_TIME: dict[str, tuple[str | None, str, str | None]] = {
    "reduce_sum_square": ("square", "reduce_sum", None),
    "reduce_log_sum": (None, "reduce_sum", "log"),
}


def _reduce(ctx: ExportContext, op: str, axes: list[int] | None) -> list[Any]:
    keep = bool(ctx.attr("keepdims", 1))
    if not axes:
        if int(ctx.attr("noop_with_empty_axes", 0)):
            return [ctx.mb.identity(x=ctx.input(0))]
        axes = None
    if ctx.mil_dtype(ctx.input_dtype(0)) == "bool" and op in ("reduce_max", "reduce_min"):
        # any / all: MIL reduces numbers only.
        as_int = ctx.mb.cast(x=ctx.input(0), dtype="int32")
        return [ctx.mb.cast(x=_reduce_op(ctx, op, as_int, axes, keep), dtype="bool")]
    return [_reduce_op(ctx, op, ctx.input(0), axes, keep)]


def _reduce_op(ctx: ExportContext, op: str, x: Any, axes: list[int] | None, keep: bool) -> Any:
    if op == "reduce_log_sum":
        # MIL's reduce_log_sum adds no epsilon but some targets lack it for ints: sum then log.
        total = ctx.mb.reduce_sum(x=x, axes=axes, keep_dims=keep)
        return ctx.mb.log(x=total, epsilon=0.0)
    return getattr(ctx.mb, op)(x=x, axes=axes, keep_dims=keep)


#: What each reduction of no elements gives (onnx's reference): its identity element.
_OF_NOTHING = {
    "reduce_sum": 0.0,
    "reduce_sum_square": 0.0,
    "reduce_l1_norm": 0.0,
    "reduce_l2_norm": 0.0,
    "reduce_prod": 1.0,
    "reduce_max": -np.inf,
    "reduce_min": np.inf,
    "reduce_log_sum": -np.inf,
    "reduce_log_sum_exp": -np.inf,
}


def _reduction_of_nothing(ctx: ExportContext, op: str, shape: list[int]) -> Any:
    if op not in _OF_NOTHING:
        raise ctx.error("an empty input reduced over axes computed at run time")
    word = ctx.mil_dtype(ctx.input_dtype(0))
    value = _OF_NOTHING[op]
    if word == "bool":
        return ctx.make_constant(np.full(shape, value > 0, np.bool_))
    if word == "int32":
        if not np.isfinite(value) and ctx.input_dtype(0) != ir.DataType.INT32:
            raise ctx.error("an empty integer input (its type's bound) reduced at run time axes")
        bounds = np.iinfo(np.int32)
        whole = {np.inf: bounds.max, -np.inf: bounds.min}.get(value, value)
        return ctx.make_constant(np.full(shape, whole, np.int32))
    return ctx.make_constant(np.full(shape, value, np.float16 if word == "fp16" else np.float32))


def _reduce_runtime_axes(ctx: ExportContext, op: str) -> list[Any]:
    """A reduction over axes computed at run time: each axis of the input is reduced (kept) or
    not, chosen with ``select`` by whether it is among the axes; then the kept unit dims are cut
    to the reduced length (keepdims) or reshaped away to the node's known output shape."""
    mb = ctx.mb
    dims = ctx.input_shape(0)
    axes_shape = ctx.input_shape(1)
    if dims is None or axes_shape is None or None in axes_shape:
        raise ctx.error("axes computed at run time, and the rank or the number of axes unknown")
    rank, count = len(dims), math.prod(d for d in axes_shape if d is not None)
    keep = bool(ctx.attr("keepdims", 1))
    if count == 0:
        return _reduce(ctx, op, [])
    out_shape = ctx.node.outputs[0].shape
    static_out = [d for d in out_shape if isinstance(d, int)] if out_shape is not None else None
    if out_shape is not None and static_out is not None and len(static_out) != len(out_shape):
        static_out = None
    empty = [axis for axis, dim in enumerate(dims) if dim == 0]
    kept_empty = keep and static_out is not None and all(static_out[a] == 0 for a in empty)
    if empty and static_out is not None and 0 not in static_out:
        # Every empty axis is reduced (the declared output is not empty): whatever the axes,
        # the result is the reduction of nothing, its identity element.
        return [_reduction_of_nothing(ctx, op, static_out)]
    axes = mb.reshape(x=ctx.input(1), shape=[count, 1])
    axes = mb.select(
        cond=mb.less(x=axes, y=np.int32(0)), a=mb.add(x=axes, y=np.int32(rank)), b=axes
    )
    matches = mb.cast(x=mb.equal(x=axes, y=np.arange(rank, dtype=np.int32)), dtype="int32")
    counts = mb.reduce_sum(x=matches, axes=[0], keep_dims=False)
    chosen = mb.greater(x=counts, y=np.int32(0))
    if empty and static_out is None:
        # Each output element reduces nothing (an empty axis is among the axes) or there are
        # none (it is not): the identity element, in the shape the axes give at run time.
        kept_shape = mb.select(cond=chosen, a=np.ones(rank, np.int32), b=mb.shape(x=ctx.input(0)))
        shape = kept_shape if keep else _without_reduced(ctx, kept_shape, chosen, count)
        nothing = _reduction_of_nothing(ctx, op, [])
        return [mb.fill(shape=shape, value=nothing.val)]
    if empty and not kept_empty:
        # select cannot broadcast a reduced unit axis back over an empty one.
        raise ctx.error("an empty input reduced over axes computed at run time")
    before, per_axis, after = _ONE_AXIS_AT_A_TIME.get(op, (None, op, None))
    x = ctx.input(0)
    boolean = ctx.mil_dtype(ctx.input_dtype(0)) == "bool"
    if boolean:
        x = mb.cast(x=x, dtype="int32")
    if before is not None:
        x = getattr(mb, before)(x=x)
    for axis in range(rank):
        reduced = _reduce_op(ctx, per_axis, x, [axis], True)
        picked = mb.greater(x=mb.gather(x=counts, indices=np.int32(axis), axis=0), y=np.int32(0))
        x = mb.select(cond=picked, a=reduced, b=x)  # broadcast back along the axis when chosen
    if after is not None:
        x = getattr(mb, after)(x=x)
    ends = mb.select(cond=chosen, a=np.ones(rank, np.int32), b=mb.shape(x=x))
    x = mb.slice_by_index(x=x, begin=np.zeros(rank, np.int32), end=ends)
    if boolean:
        x = mb.cast(x=x, dtype="bool")
    if keep:
        return [x]
    if static_out is not None:
        return [mb.reshape(x=x, shape=static_out)]
    return [mb.reshape(x=x, shape=_without_reduced(ctx, mb.shape(x=x), chosen, count))]


def _without_reduced(ctx: ExportContext, kept_shape: Any, chosen: Any, count: int) -> Any:
    """``kept_shape`` (keepdims' shape) without the reduced axes, at run time, for keepdims=0
    with axes known only then: the output's rank is the input's less the axes' count, which
    holds for distinct axes. MIL tensors have a static rank, so repeated axes (a higher rank)
    cannot be held: the shape is then made too large for the data, and the reshape fails at
    run time instead of giving a wrong rank."""
    mb = ctx.mb
    rank = int(kept_shape.shape[0])
    left = rank - count
    if left <= 0:
        return np.zeros(0, np.int32)
    staying = mb.sub(x=np.int32(1), y=mb.cast(x=chosen, dtype="int32"))
    # How many staying axes lie at or before each axis: the k-th staying axis counts k.
    triangle = np.tril(np.ones((rank, rank), np.int32))
    counted = mb.reduce_sum(x=mb.mul(x=triangle, y=staying), axes=[1], keep_dims=False)
    ordinals = np.arange(1, left + 1, dtype=np.int32).reshape(left, 1)
    picks = mb.mul(x=mb.cast(x=mb.equal(x=counted, y=ordinals), dtype="int32"), y=staying)
    shape = mb.reduce_sum(x=mb.mul(x=picks, y=kept_shape), axes=[1], keep_dims=False)
    repeats = mb.sub(
        x=np.int32(count), y=mb.reduce_sum(x=mb.cast(x=chosen, dtype="int32"), axes=[0])
    )
    first = np.eye(1, left, dtype=np.int32).reshape(left)
    return mb.mul(x=shape, y=mb.add(x=mb.mul(x=repeats, y=first), y=np.int32(1)))


def _register(onnx_op: str, mil_op: str) -> None:
    def by_attribute(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
        return _reduce(ctx, mil_op, ctx.attr("axes", None))

    def by_input(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
        if not ctx.has_input(1):
            return _reduce(ctx, mil_op, None)
        axes = ctx.ints(1)
        if axes is None:
            return _reduce_runtime_axes(ctx, mil_op)
        return _reduce(ctx, mil_op, axes)

    by_attribute.__name__ = f"{onnx_op.lower()}_v1"
    ops.register(onnx_op, since=1)(by_attribute)
    # ReduceSum took its axes as an input from 13, the others from 18.
    since = 13 if onnx_op == "ReduceSum" else 18
    by_input.__name__ = f"{onnx_op.lower()}_v{since}"
    ops.register(onnx_op, since=since)(by_input)


for _onnx_op, _mil_op in _REDUCTIONS.items():
    _register(_onnx_op, _mil_op)


def _arg(ctx: ExportContext, op: str) -> list[Any]:
    mb = ctx.mb
    ctx.mil_dtype(ctx.input_dtype(0))
    axis = int(ctx.attr("axis", 0))
    keep = bool(ctx.attr("keepdims", 1))
    if not int(ctx.attr("select_last_index", 0)):
        return [getattr(mb, op)(x=ctx.input(0), axis=axis, keep_dims=keep)]
    # The last of equal extremes: the first in the reversed axis, counted from its end.
    axis = normalized_axes([axis], ctx.input_rank(0))[0]
    found = getattr(mb, op)(x=mb.reverse(x=ctx.input(0), axes=[axis]), axis=axis, keep_dims=keep)
    length = (ctx.input_shape(0) or ())[axis]
    last: Any = (
        np.int32(length - 1)
        if length is not None
        else mb.sub(x=mb.gather(x=mb.shape(x=ctx.input(0)), indices=np.int32(axis)), y=np.int32(1))
    )
    return [mb.sub(x=last, y=found)]


@ops.register("ArgMax", since=1)
def argmax_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _arg(ctx, "reduce_argmax")


@ops.register("ArgMin", since=1)
def argmin_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _arg(ctx, "reduce_argmin")


@ops.register("LpNormalization", since=1)
def lp_normalization_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "LpNormalization")
    p = int(ctx.attr("p", 2))
    if p not in (1, 2):
        raise ctx.error(f"p={p}: ONNX defines 1 and 2")
    norm = "reduce_l1_norm" if p == 1 else "reduce_l2_norm"
    x = ctx.input(0)
    axis = int(ctx.attr("axis", -1))
    mb = ctx.mb
    size = getattr(mb, norm)(x=x, axes=[axis], keep_dims=True)
    # A zero vector stays zero (onnxruntime's result), not 0/0.
    size = mb.select(cond=mb.equal(x=size, y=scalar_like(ctx, 0)), a=scalar_like(ctx, 1), b=size)
    return [mb.real_div(x=x, y=size)]
