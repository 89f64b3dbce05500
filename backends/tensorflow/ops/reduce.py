"""Reductions and ArgMax/ArgMin; a reduction keeps its input's layout with its axes rewritten."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    Physical,
    for_tflite,
    ir,
    normalize_axis,
    ops,
)


def _reduce(ctx: ExportContext, axes: list[int] | None, fn: Callable[..., Any]) -> Outputs:
    held = ctx.physical(0)
    tensor = held.tensor
    rank = len(tensor.shape)
    keepdims = bool(ctx.attr("keepdims", 1))
    if axes is None or not axes:
        if axes is not None and ctx.attr("noop_with_empty_axes", 0):
            return [held]
        axes = list(range(rank))
    logical_axes = sorted({normalize_axis(a, rank) for a in axes})
    physical_axes = [held.physical_axis(a) for a in logical_axes]
    result = fn(tensor, axis=physical_axes, keepdims=keepdims)
    if held.perm is None:
        return [result]
    if keepdims:
        return [Physical(result, held.perm)]
    # The axes left, in held order, relabelled by their rank among the logical axes left.
    kept = [axis for axis in held.perm if axis not in logical_axes]
    order = sorted(kept)
    perm = tuple(order.index(axis) for axis in kept)
    return [result if perm == tuple(range(len(perm))) else Physical(result, perm)]


def _axes_input(ctx: ExportContext) -> list[int] | None:
    return ctx.int_list(1) if ctx.has_input(1) else None


def _reduce_run_time_axes(ctx: ExportContext, fn: Callable[..., Any]) -> Outputs:
    """Axes fed at run time: the reduction takes them as a tensor (in ONNX's layout)."""
    tf = ctx.tf
    x = ctx.input(0)
    # TFLite's MEAN takes int32 axes only (any rank's axes fit).
    index_type = tf.int32 if for_tflite(ctx) else tf.int64
    axes = tf.reshape(tf.cast(ctx.input(1), index_type), [-1])
    if not ctx.attr("noop_with_empty_axes", 0):
        every = tf.range(tf.rank(x, name="rank"), dtype=index_type)
        axes = tf.cond(tf.size(axes) > 0, lambda: axes, lambda: every)
    return [fn(x, axis=axes, keepdims=bool(ctx.attr("keepdims", 1)))]


def _axes_attr(ctx: ExportContext) -> list[int] | None:
    found = ctx.attr("axes", None)
    return None if found is None else [int(a) for a in found]


def _l1(tf: Any) -> Callable[..., Any]:
    # TF's Abs has no unsigned kernels (nor needs one there).
    return lambda x, axis, keepdims: tf.reduce_sum(
        x if x.dtype.is_unsigned else tf.abs(x), axis=axis, keepdims=keepdims
    )


def _l2(tf: Any) -> Callable[..., Any]:
    return lambda x, axis, keepdims: tf.sqrt(tf.reduce_sum(x * x, axis=axis, keepdims=keepdims))


def _log_sum(tf: Any) -> Callable[..., Any]:
    return lambda x, axis, keepdims: tf.math.log(tf.reduce_sum(x, axis=axis, keepdims=keepdims))


def _sum_square(tf: Any) -> Callable[..., Any]:
    return lambda x, axis, keepdims: tf.reduce_sum(x * x, axis=axis, keepdims=keepdims)


def _bool_aware(reduce: Callable[..., Any], logical: Callable[..., Any]) -> Callable[..., Any]:
    """TF's Max/Min take no bool (ReduceMax/ReduceMin do since opset 20): any/all do it."""
    return lambda x, axis, keepdims: (logical if x.dtype.is_bool else reduce)(
        x, axis=axis, keepdims=keepdims
    )


_REDUCTIONS: dict[str, Callable[[Any], Callable[..., Any]]] = {
    "ReduceSum": lambda tf: tf.reduce_sum,
    "ReduceMean": lambda tf: tf.reduce_mean,
    "ReduceMax": lambda tf: _bool_aware(tf.reduce_max, tf.reduce_any),
    "ReduceMin": lambda tf: _bool_aware(tf.reduce_min, tf.reduce_all),
    "ReduceProd": lambda tf: tf.reduce_prod,
    "ReduceL1": _l1,
    "ReduceL2": _l2,
    "ReduceLogSum": _log_sum,
    "ReduceLogSumExp": lambda tf: tf.reduce_logsumexp,
    "ReduceSumSquare": _sum_square,
}
#: The version from which each reduction reads its axes from input 1 (ReduceSum moved first).
_AXES_AS_INPUT = {name: 18 for name in _REDUCTIONS} | {"ReduceSum": 13}
#: ReduceMax and ReduceMin took bool inputs at 20 (same semantics).


def _register(op_type: str) -> None:
    make = _REDUCTIONS[op_type]
    since_input = _AXES_AS_INPUT[op_type]

    def from_attribute(node: ir.Node, ctx: ExportContext) -> Outputs:
        return _reduce(ctx, _axes_attr(ctx), make(ctx.tf))

    def from_input(node: ir.Node, ctx: ExportContext) -> Outputs:
        if ctx.has_input(1) and ctx.constant_input(1) is None:
            return _reduce_run_time_axes(ctx, make(ctx.tf))
        return _reduce(ctx, _axes_input(ctx), make(ctx.tf))

    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in op_type).lstrip("_")
    # Axes as an attribute from opset 1 (later versions added element types and, at 13,
    # ReduceSum's axes input); the semantics of the attribute form never changed.
    from_attribute.__name__ = from_attribute.__qualname__ = f"{snake}_v1"
    from_input.__name__ = from_input.__qualname__ = f"{snake}_v{since_input}"
    ops.register(op_type, since=1)(from_attribute)
    ops.register(op_type, since=since_input)(from_input)


for _op in _REDUCTIONS:
    _register(_op)


def _arg(ctx: ExportContext, fn: Callable[..., Any]) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    rank = len(x.shape)
    axis = normalize_axis(int(ctx.attr("axis", 0)), rank)
    if ctx.attr("select_last_index", 0):
        reversed_x = tf.reverse(x, [axis])
        found = fn(reversed_x, axis=axis, output_type=tf.int64)
        found = tf.cast(tf.shape(x)[axis], tf.int64) - 1 - found
    else:
        found = fn(x, axis=axis, output_type=tf.int64)
    if ctx.attr("keepdims", 1):
        found = tf.expand_dims(found, axis)
    return [found]


@ops.register("ArgMax", since=1)
def arg_max_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _arg(ctx, ctx.tf.math.argmax)


@ops.register("ArgMin", since=1)
def arg_min_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _arg(ctx, ctx.tf.math.argmin)
