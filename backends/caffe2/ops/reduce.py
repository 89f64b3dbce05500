"""Reductions along axes and arg-reductions."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.context import Converter, ExportContext, caffe2_dtype
from unframe.backends.caffe2.ops import _runtime as runtime
from unframe.backends.caffe2.ops._common import (
    NARROW_INTEGERS,
    NUMERIC,
    attr_int,
    attr_ints,
    carried,
    cast,
    expand,
    normalize_axis,
    required,
    reshape,
)
from unframe.backends.caffe2.registry import ops

# ONNX reduction -> the Caffe2 operator of the same name and meaning.
_DIRECT = ("ReduceMax", "ReduceMin", "ReduceSum", "ReduceMean", "ReduceL1", "ReduceL2")
# Reductions built from a Caffe2 reduction: (pre-op, reduction, post-op).
_COMPOSED = {
    "ReduceSumSquare": ("Sqr", "ReduceSum", None),
    "ReduceLogSum": (None, "ReduceSum", "Log"),
}
# The opset from which each reduction takes ``axes`` as an input instead of an attribute.
_AXES_INPUT_SINCE = {"ReduceSum": 13}


def _runtime_axes(node: ir.Node, ctx: ExportContext, from_input: bool) -> bool:
    """Whether the axes to reduce are a run-time input."""
    return from_input and ctx.has_input(1) and ctx.known_value(node.inputs[1]) is None


def _axes(node: ir.Node, ctx: ExportContext, from_input: bool) -> list[int] | None:
    """The normalized axes to reduce, or None where the node is a no-op (noop_with_empty_axes)."""
    rank = ctx.need_rank(node.inputs[0])
    if from_input:
        axes = ctx.known_ints(node.inputs[1]) if ctx.has_input(1) else None
    else:
        axes = attr_ints(node, "axes")
    if not axes:
        if attr_int(node, "noop_with_empty_axes", 0):
            return None
        axes = list(range(rank))
    return sorted(normalize_axis(ctx, a, rank) for a in axes)


Step = Callable[[str, int], str]


class NamedAxes(NamedTuple):
    """Which axes a run-time axes input names: one 0-d bool per axis, and all of them as 1-D."""

    each: list[str]
    vector: str


def named_axes(node: ir.Node, ctx: ExportContext, rank: int) -> NamedAxes:
    """The axes input 1 of a reduction names (all of them where it is empty, unless no-op)."""
    axes = ctx.temp("Reshape", [runtime.int64(ctx, node.inputs[1])], "axes", shape=[-1])  # type: ignore[arg-type]
    each = [runtime.axis_flag(ctx, axes, rank, axis) for axis in range(rank)]
    if not attr_int(node, "noop_with_empty_axes", 0):
        count = ctx.temp("Size", [axes], "count")
        empty = ctx.temp("EQ", [count, runtime.const64(ctx, 0)], "empty")
        each = [ctx.temp("Or", [flag, empty], "named") for flag in each]
    vector = ctx.fresh("named")
    columns = [ctx.temp("Reshape", [flag], "named", shape=[1]) for flag in each]
    ctx.emit("Concat", columns, [vector, ctx.fresh("split_info")], axis=0)
    return NamedAxes(each, vector)


def reduce_named_axes(
    ctx: ExportContext,
    blob: str,
    value: ir.Value,
    named: NamedAxes,
    step: Step,
    identity: float,
    dtype: ir.DataType | None = None,
) -> str:
    """``blob`` (``value``'s shape; ``dtype``, where not ``value``'s) reduced over the ``named``
    axes, keeping every dim.

    Each axis is reduced (``step``, one axis, keepdims) into a copy of the data's shape and
    chosen by Where where the axis is named; a Slice with run-time ends then keeps one entry of
    each reduced axis. An empty axis cannot hold its reduction, so it becomes ``identity``
    Tiled once (named) or zero times (not named).
    """
    shape = ctx.need_shape(value, "to reduce over run-time axes")
    rank = len(shape)
    dtype = dtype or ctx.dtype(value) or ir.DataType.FLOAT
    for axis in sorted(range(rank), key=lambda a: shape[a] != 0):
        flag = named.each[axis]
        if shape[axis] == 0:
            one_here = ctx.make_constant(np.arange(rank) == axis, "axis")
            ones = ctx.make_constant(np.ones(rank, dtype=np.int64), "ones")
            dims = ctx.temp("Where", [one_here, ones, ctx.temp("Shape", [blob], "dims")], "dims")
            filled = ctx.temp(
                "ConstantFill", [dims], "identity", input_as_shape=1,
                value=_fill_value(identity, dtype), dtype=caffe2_dtype(dtype),
            )  # fmt: skip
            tiles = ctx.temp("Cast", [flag], "tiles", to=caffe2_dtype(ir.DataType.INT64))
            blob = ctx.temp("Tile", [filled, tiles, runtime.const64(ctx, axis)], "tiled")
            continue
        reduced = runtime.like(ctx, step(blob, axis), blob)
        blob = ctx.temp("Where", [runtime.like_flag(ctx, flag, blob), reduced, blob], "reduced")
    ones = ctx.make_constant(np.ones(rank, dtype=np.int64), "ones")
    ends = ctx.temp("Where", [named.vector, ones, ctx.temp("Shape", [blob], "dims")], "ends")
    starts = ctx.make_constant(np.zeros(rank, dtype=np.int64), "starts")
    return ctx.temp("Slice", [blob, starts, ends], "kept")


def drop_named(ctx: ExportContext, blob: str, named: NamedAxes, out: str) -> None:
    """Writes ``blob`` (reduced with keepdims) to ``out`` without its named axes."""
    dims = ctx.temp("Shape", [blob], "dims")
    kept = ctx.temp("BooleanMask", [dims, ctx.temp("Not", [named.vector], "unnamed")], "dims")
    reshape(ctx, blob, kept, out)


def _reduce_runtime(
    node: ir.Node,
    ctx: ExportContext,
    blob: str,
    step: Step,
    identity: float,
    post: str | None,
    dtype: ir.DataType | None = None,
) -> str:
    """A reduction over run-time axes of ``blob`` (input 0, maybe transformed elementwise, of
    ``dtype`` where not input 0's); returns the output's blob."""
    named = named_axes(node, ctx, ctx.need_rank(node.inputs[0]))
    reduced = reduce_named_axes(ctx, blob, node.inputs[0], named, step, identity, dtype)  # type: ignore[arg-type]
    if post is not None:  # Log: float only in Caffe2 (log_op.cc), runtime.log's form for double
        reduced = runtime.log(ctx, reduced, ctx.dtype(node.inputs[0]) or ir.DataType.FLOAT)
    if attr_int(node, "keepdims", 1):
        return reduced
    out = ctx.fresh("reduced")
    drop_named(ctx, reduced, named, out)
    return out


def _fill_value(identity: float, dtype: ir.DataType) -> float | int:
    if dtype.is_floating_point():
        return float(identity)
    if dtype == ir.DataType.BOOL:
        return int(identity > 0)
    info = np.iinfo(dtype.numpy())
    return int(np.clip(identity, info.min, info.max)) if np.isinf(identity) else int(identity)


#: What each reduction gives over no elements (ONNX's identity values).
_EMPTY = {
    "ReduceMax": -np.inf, "ReduceMin": np.inf, "ReduceSum": 0, "ReduceMean": np.nan,
    "ReduceL1": 0, "ReduceL2": 0, "ReduceSumSquare": 0, "ReduceLogSum": -np.inf,
    "ReduceLogSumExp": -np.inf,
}  # fmt: skip


def _empty_reduction(node: ir.Node, ctx: ExportContext, axes: list[int] | None) -> bool:
    """Writes the constant result of reducing over an empty axis; False where none is empty."""
    shape = ctx.shape(node.inputs[0])
    out = ctx.shape(node.outputs[0])
    if shape is None or out is None or axes is None or not any(shape[a] == 0 for a in axes):
        return False
    dtype = (ctx.dtype(node.outputs[0]) or ir.DataType.FLOAT).numpy()
    fill = _EMPTY[node.op_type]
    if not np.issubdtype(dtype, np.floating):
        info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
        if dtype == np.bool_:
            fill = node.op_type == "ReduceMin"
        elif info is not None and np.isinf(fill):
            fill = info.max if fill > 0 else info.min
    ctx.make_constant_output(np.full(out, fill, dtype=dtype), node)
    return True


def _square(ctx: ExportContext, x: str, dtype: ir.DataType | None) -> str:
    """x * x: Caffe2's Sqr is float only (sqr_op.cc), Mul takes every numeric type."""
    if dtype in (None, ir.DataType.FLOAT):
        return ctx.temp("Sqr", [x])
    return ctx.temp("Mul", [x, x], "square")


def _reduce(onnx_type: str, from_input: bool, version: int) -> Converter:
    pre, caffe2_type, post = _COMPOSED.get(onnx_type, (None, onnx_type, None))

    def convert(node: ir.Node, ctx: ExportContext) -> None:
        dtype = ctx.dtype(node.inputs[0])
        # Caffe2's ReduceSum, ReduceMax and ReduceMin take int32, int64, float and double
        # (reduce_ops.cc): bool and narrow integers are reduced in int64 and cast back.
        wide = dtype in _WIDENED and caffe2_type in ("ReduceSum", "ReduceMax", "ReduceMin")
        if _runtime_axes(node, ctx, from_input):
            x = ctx.input(0)
            if wide:
                x = cast(ctx, x, ir.DataType.INT64)
            if pre is not None:
                x = _square(ctx, x, dtype)
            step = one_axis(ctx, caffe2_type)
            identity = _EMPTY[caffe2_type]
            if wide and dtype is not None:
                identity = _fill_value(identity, dtype)  # the narrow type's, not int64's
            reduced = _reduce_runtime(
                node, ctx, x, step, identity, post, ir.DataType.INT64 if wide else None
            )
            _write(ctx, node, reduced, dtype if wide else None)
            return
        axes = _axes(node, ctx, from_input)
        if _empty_reduction(node, ctx, axes):
            return
        x = ctx.input(0)
        if axes is None:
            ctx.emit("Copy", [x], [ctx.output(node)])
            return
        if wide:
            x = cast(ctx, x, ir.DataType.INT64)
        keepdims = attr_int(node, "keepdims", 1)
        if pre is not None:
            x = _square(ctx, x, dtype)
        reduced = ctx.temp(caffe2_type, [x], "reduced", axes=axes, keepdims=keepdims)
        if post is not None:
            # Caffe2's Log is float only (log_op.cc): double takes runtime.log's form.
            reduced = runtime.log(ctx, reduced, dtype or ir.DataType.FLOAT)
        _write(ctx, node, reduced, dtype if wide else None)

    convert.__name__ = convert.__qualname__ = f"{onnx_type.lower()}_v{version}"
    return convert


for _op in (*_DIRECT, *_COMPOSED):
    _switch = _AXES_INPUT_SINCE.get(_op, 18)
    ops.register(_op, since=1, until=_switch - 1)(_reduce(_op, False, 1))
    ops.register(_op, since=_switch)(_reduce(_op, True, _switch))


#: Element types a reduction widens to int64 (see ``_reduce``).
_WIDENED = {ir.DataType.BOOL, *NARROW_INTEGERS}


def _write(ctx: ExportContext, node: ir.Node, blob: str, dtype: ir.DataType | None) -> None:
    """``blob`` as the node's output, cast to ``dtype`` where given."""
    if dtype is None:
        ctx.emit("Copy", [blob], [ctx.output(node)])
    else:
        ctx.emit("Cast", [blob], [ctx.output(node)], to=caffe2_dtype(dtype))


def one_axis(ctx: ExportContext, caffe2_type: str) -> Step:
    """A step of ``reduce_named_axes``: the Caffe2 reduction over one axis, keeping it."""

    def step(blob: str, axis: int) -> str:
        return ctx.temp(caffe2_type, [blob], "reduced", axes=[axis], keepdims=1)

    return step


def _runtime_log_sum_exp(node: ir.Node, ctx: ExportContext) -> None:
    # max + log(sum(exp(x - max))), both reductions keeping dims; keepdims=0 drops them last.
    x = ctx.input(0)
    data = node.inputs[0]
    named = named_axes(node, ctx, ctx.need_rank(data))
    peak = reduce_named_axes(ctx, x, data, named, one_axis(ctx, "ReduceMax"), -np.inf)  # type: ignore[arg-type]
    dtype = ctx.dtype(data) or ir.DataType.FLOAT
    exps = runtime.exp(ctx, ctx.temp("Sub", [x, peak], "shifted"), dtype)
    total = reduce_named_axes(ctx, exps, data, named, one_axis(ctx, "ReduceSum"), 0)  # type: ignore[arg-type]
    result = ctx.temp("Add", [runtime.log(ctx, total, dtype), peak], "lse")
    if attr_int(node, "keepdims", 1):
        ctx.emit("Copy", [result], [ctx.output(node)])
    else:
        drop_named(ctx, result, named, ctx.output(node))


def _reduce_log_sum_exp(node: ir.Node, ctx: ExportContext, from_input: bool) -> None:
    if _runtime_axes(node, ctx, from_input):
        _runtime_log_sum_exp(node, ctx)
        return
    axes = _axes(node, ctx, from_input)
    x = ctx.input(0)
    if _empty_reduction(node, ctx, axes):
        return
    if axes is None:
        ctx.emit("Copy", [x], [ctx.output(node)])
        return
    # max + log(sum(exp(x - max))), with the max kept for broadcasting and reduced at the end.
    peak = ctx.temp("ReduceMax", [x], "max", axes=axes, keepdims=1)
    dtype = ctx.dtype(node.inputs[0]) or ir.DataType.FLOAT
    exps = runtime.exp(ctx, ctx.temp("Sub", [x, peak], "shifted"), dtype)
    keepdims = attr_int(node, "keepdims", 1)
    summed = ctx.temp("ReduceSum", [exps], "sum", axes=axes, keepdims=keepdims)
    total = runtime.log(ctx, summed, dtype)
    if not keepdims:
        peak = ctx.temp("Squeeze", [peak], "max", dims=axes)
    ctx.emit("Add", [total, peak], [ctx.output(node)])


@ops.register("ReduceLogSumExp", since=1, until=17)
def reduce_log_sum_exp_v1(node: ir.Node, ctx: ExportContext) -> None:
    _reduce_log_sum_exp(node, ctx, from_input=False)


@ops.register("ReduceLogSumExp", since=18)
def reduce_log_sum_exp_v18(node: ir.Node, ctx: ExportContext) -> None:
    _reduce_log_sum_exp(node, ctx, from_input=True)


def _arg(node: ir.Node, ctx: ExportContext, caffe2_type: str) -> None:
    rank = ctx.need_rank(node.inputs[0])
    axis = normalize_axis(ctx, attr_int(node, "axis", 0), rank)
    keepdims = attr_int(node, "keepdims", 1)
    # ArgOp: int32, int64, float, double (arg_ops.h); narrower integers compare alike in int64.
    x, _ = carried(ctx, ctx.input(0), ctx.dtype(node.inputs[0]), NUMERIC,
                   f"{caffe2_type} (arg_ops.h)")  # fmt: skip
    if not attr_int(node, "select_last_index", 0):
        ctx.emit(caffe2_type, [x], [ctx.output(node)], axis=axis, keepdims=keepdims)
        return
    # The last extreme is the first one in the reversed axis: n - 1 - index there.
    size = ctx.need_shape(node.inputs[0], "to reverse the axis")[axis]
    reverse = ctx.make_constant(np.arange(size - 1, -1, -1, dtype=np.int64), "reverse")
    flipped = ctx.temp("Gather", [x, reverse], "flipped", axis=axis)
    index = ctx.temp(caffe2_type, [flipped], "index", axis=axis, keepdims=keepdims)
    last = ctx.make_constant(np.array(size - 1, dtype=np.int64), "last")
    ctx.emit("Sub", [last, index], [ctx.output(node)])


@ops.register("ArgMax", since=1)
def arg_max_v1(node: ir.Node, ctx: ExportContext) -> None:
    _arg(node, ctx, "ArgMax")


@ops.register("ArgMin", since=1)
def arg_min_v1(node: ir.Node, ctx: ExportContext) -> None:
    _arg(node, ctx, "ArgMin")


def _shift(
    ctx: ExportContext,
    blob: str,
    shape: tuple[int, ...],
    axis: int,
    by: int,
    dtype: np.dtype,
    fill: int = 0,
) -> str:
    """``blob`` moved ``by`` places along ``axis``, ``fill`` coming in at the front."""
    n = shape[axis]
    ends = list(shape)
    ends[axis] = n - by
    kept = ctx.temp("Slice", [blob], "kept", starts=[0] * len(shape), ends=ends)
    zero_shape = list(shape)
    zero_shape[axis] = by
    zeros = ctx.make_constant(np.full(zero_shape, fill, dtype=dtype), "fill")
    out = ctx.fresh("shifted")
    ctx.emit("Concat", [zeros, kept], [out, ctx.fresh("split_info")], axis=axis)
    return out


def _scan(node: ir.Node, ctx: ExportContext, combine: str, identity: int) -> None:
    shape = ctx.need_shape(node.inputs[0], "for the scan")
    axis_value = ctx.known_value(node.inputs[1])
    if axis_value is not None:
        axis = normalize_axis(ctx, int(axis_value), len(shape))
        ctx.emit("Copy", [_scan_along(node, ctx, shape, axis, combine, identity)],
                 [ctx.output(node)])  # fmt: skip
        return
    # A run-time axis: scan along every axis and keep the scan whose axis the input names.
    axis_blob = runtime.int64(ctx, required(ctx, node, 1))
    axes = ctx.temp("Reshape", [axis_blob], "axes", shape=[1])
    shape_blob = ctx.make_constant(np.array(shape, dtype=np.int64), "shape")
    result = _scan_along(node, ctx, shape, 0, combine, identity)
    for axis in range(1, len(shape)):
        named = runtime.axis_flag(ctx, axes, len(shape), axis)
        chosen = expand(ctx, named, shape_blob, flag=True)
        scanned = _scan_along(node, ctx, shape, axis, combine, identity)
        result = ctx.temp("Where", [chosen, scanned, result], "scan")
    ctx.emit("Copy", [result], [ctx.output(node)])


def _scan_along(
    node: ir.Node,
    ctx: ExportContext,
    shape: tuple[int, ...],
    axis: int,
    combine: str,
    identity: int,
) -> str:
    dtype = (ctx.dtype(node.inputs[0]) or ir.DataType.FLOAT).numpy()
    n = shape[axis]
    blob = ctx.input(0)
    reverse = attr_int(node, "reverse", 0)
    flip = ctx.make_constant(np.arange(n - 1, -1, -1, dtype=np.int64), "flip") if reverse else ""
    if reverse:
        blob = ctx.temp("Gather", [blob, flip], "reversed", axis=axis)
    # Hillis-Steele scan: log2(n) steps, each combining with a copy shifted by 2**k.
    step = 1
    while step < n:
        shifted = _shift(ctx, blob, shape, axis, step, dtype, identity)
        blob = ctx.temp(combine, [blob, shifted], "scan")
        step *= 2
    if attr_int(node, "exclusive", 0) and n:
        blob = _shift(ctx, blob, shape, axis, 1, dtype, identity)
    if reverse:
        blob = ctx.temp("Gather", [blob, flip], "reversed", axis=axis)
    return blob


@ops.register("CumSum", since=11)
def cum_sum_v11(node: ir.Node, ctx: ExportContext) -> None:
    _scan(node, ctx, "Add", 0)


@ops.register("CumProd", since=26)
def cum_prod_v26(node: ir.Node, ctx: ExportContext) -> None:
    _scan(node, ctx, "Mul", 1)


@ops.register("ReduceProd", since=1, until=17)
def reduce_prod_v1(node: ir.Node, ctx: ExportContext) -> None:
    _reduce_prod(node, ctx, attr_ints(node, "axes"))


@ops.register("ReduceProd", since=18)
def reduce_prod_v18(node: ir.Node, ctx: ExportContext) -> None:
    axes = ctx.known_ints(node.inputs[1]) if ctx.has_input(1) else None
    if ctx.has_input(1) and axes is None:
        _runtime_reduce_prod(node, ctx)
        return
    if not axes and attr_int(node, "noop_with_empty_axes", 0):
        ctx.emit("Copy", [ctx.input(0)], [ctx.output(node)])
        return
    _reduce_prod(node, ctx, axes)


def _runtime_reduce_prod(node: ir.Node, ctx: ExportContext) -> None:
    shape = ctx.need_shape(node.inputs[0], "to split it")

    def product_along(blob: str, axis: int) -> str:
        pieces = [ctx.fresh("slice") for _ in range(shape[axis])]
        ctx.emit("Split", [blob], pieces, axis=axis, split=[1] * shape[axis])
        product = pieces[0]
        for piece in pieces[1:]:
            product = ctx.temp("Mul", [product, piece], "product")
        return product

    data = required(ctx, node, 0)
    named = named_axes(node, ctx, len(shape))
    reduced = reduce_named_axes(ctx, ctx.blob(data), data, named, product_along, 1)
    if attr_int(node, "keepdims", 1):
        ctx.emit("Copy", [reduced], [ctx.output(node)])
    else:
        drop_named(ctx, reduced, named, ctx.output(node))


def _reduce_prod(node: ir.Node, ctx: ExportContext, axes: list[int] | None) -> None:
    # Caffe2 has no product reduction: multiply the slices along each axis.
    shape = list(ctx.need_shape(node.inputs[0], "to split it"))
    rank = len(shape)
    axes = sorted({normalize_axis(ctx, a, rank) for a in (axes or range(rank))})
    out_shape = ctx.need_shape(node.outputs[0], "for the result's shape")
    if any(shape[a] == 0 for a in axes):
        dtype = (ctx.dtype(node.outputs[0]) or ir.DataType.FLOAT).numpy()
        ctx.make_constant_output(np.ones(out_shape, dtype=dtype), node)
        return
    blob = ctx.input(0)
    for axis in axes:
        if shape[axis] == 1:
            continue
        pieces = [ctx.fresh("slice") for _ in range(shape[axis])]
        ctx.emit("Split", [blob], pieces, axis=axis, split=[1] * shape[axis])
        blob = pieces[0]
        for piece in pieces[1:]:
            blob = ctx.temp("Mul", [blob, piece], "product")
        shape[axis] = 1
    reshape(ctx, blob, list(out_shape), ctx.output(node))
