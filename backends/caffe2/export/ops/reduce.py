"""Reductions along axes and arg-reductions."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.export.context import Converter, ExportContext
from unframe.backends.caffe2.export.ops._common import attr_int, attr_ints, normalize_axis
from unframe.backends.caffe2.export.registry import ops

# ONNX reduction -> the Caffe2 operator of the same name and meaning.
_DIRECT = ("ReduceMax", "ReduceMin", "ReduceSum", "ReduceMean", "ReduceL1", "ReduceL2")
# Reductions built from a Caffe2 reduction: (pre-op, reduction, post-op).
_COMPOSED = {
    "ReduceSumSquare": ("Sqr", "ReduceSum", None),
    "ReduceLogSum": (None, "ReduceSum", "Log"),
}
# The opset from which each reduction takes ``axes`` as an input instead of an attribute.
_AXES_INPUT_SINCE = {"ReduceSum": 13}


def _axes(node: ir.Node, ctx: ExportContext, from_input: bool) -> list[int] | None:
    """The normalized axes to reduce, or None where the node is a no-op (noop_with_empty_axes)."""
    rank = ctx.need_rank(node.inputs[0])
    if from_input:
        axes = None
        if ctx.has_input(node, 1):
            axes = ctx.const_ints(node.inputs[1])
            if axes is None:
                return _axes_from_shapes(node, ctx)
    else:
        axes = attr_ints(node, "axes")
    if not axes:
        if attr_int(node, "noop_with_empty_axes", 0):
            return None
        axes = list(range(rank))
    return sorted(normalize_axis(ctx, a, rank) for a in axes)


def _axes_from_shapes(node: ir.Node, ctx: ExportContext) -> list[int]:
    """Run-time axes, recovered from the static input and output shapes where that is unique.

    With keepdims a reduced axis is one whose size became 1; also reducing an axis that already
    had size 1 changes nothing. Without keepdims the output must match the input with the
    reduced axes left out in exactly one way.
    """
    why = "as the axes are a run-time input"
    before = ctx.need_shape(node.inputs[0], why)
    after = ctx.need_shape(node.outputs[0], why)
    if attr_int(node, "keepdims", 1):
        if len(after) != len(before):
            raise ctx.error("the output rank does not match keepdims=1")
        axes = [i for i, (b, a) in enumerate(zip(before, after, strict=True)) if a == 1]
        if before == after and attr_int(node, "noop_with_empty_axes", 0):
            raise ctx.error("cannot tell run-time axes from a no-op (noop_with_empty_axes=1)")
        return axes
    matches = _embeddings(before, after)
    if len(matches) != 1:
        raise ctx.error("cannot tell which axes the run-time input reduces from the shapes")
    return matches[0]


def _embeddings(before: tuple[int, ...], after: tuple[int, ...]) -> list[list[int]]:
    """Every set of axes whose removal from ``before`` leaves ``after``."""
    if not after:
        return [list(range(len(before)))]
    if len(after) > len(before):
        return []
    results = []
    for i, size in enumerate(before):
        if size == after[0]:
            for rest in _embeddings(before[i + 1 :], after[1:]):
                results.append(list(range(i)) + [i + 1 + r for r in rest])
    return results


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
    ctx.constant_output(np.full(out, fill, dtype=dtype), node)
    return True


def _reduce(onnx_type: str, from_input: bool, version: int) -> Converter:
    pre, caffe2_type, post = _COMPOSED.get(onnx_type, (None, onnx_type, None))

    def convert(node: ir.Node, ctx: ExportContext) -> None:
        axes = _axes(node, ctx, from_input)
        if _empty_reduction(node, ctx, axes):
            return
        x = ctx.input(node, 0)
        out = ctx.output(node)
        if axes is None:
            ctx.emit("Copy", [x], [out])
            return
        keepdims = attr_int(node, "keepdims", 1)
        if pre is not None:
            x = ctx.temp(pre, [x])
        if post is None:
            ctx.emit(caffe2_type, [x], [out], axes=axes, keepdims=keepdims)
            return
        reduced = ctx.temp(caffe2_type, [x], "reduced", axes=axes, keepdims=keepdims)
        ctx.emit(post, [reduced], [out])

    convert.__name__ = convert.__qualname__ = f"{onnx_type.lower()}_v{version}"
    return convert


for _op in (*_DIRECT, *_COMPOSED):
    _switch = _AXES_INPUT_SINCE.get(_op, 18)
    ops.register(_op, since=1, until=_switch - 1)(_reduce(_op, False, 1))
    ops.register(_op, since=_switch)(_reduce(_op, True, _switch))


def _reduce_log_sum_exp(node: ir.Node, ctx: ExportContext, from_input: bool) -> None:
    axes = _axes(node, ctx, from_input)
    x = ctx.input(node, 0)
    if _empty_reduction(node, ctx, axes):
        return
    if axes is None:
        ctx.emit("Copy", [x], [ctx.output(node)])
        return
    # max + log(sum(exp(x - max))), with the max kept for broadcasting and reduced at the end.
    peak = ctx.temp("ReduceMax", [x], "max", axes=axes, keepdims=1)
    exps = ctx.temp("Exp", [ctx.temp("Sub", [x, peak], "shifted")])
    keepdims = attr_int(node, "keepdims", 1)
    total = ctx.temp("Log", [ctx.temp("ReduceSum", [exps], "sum", axes=axes, keepdims=keepdims)])
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
    if not attr_int(node, "select_last_index", 0):
        ctx.emit(
            caffe2_type, [ctx.input(node, 0)], [ctx.output(node)], axis=axis, keepdims=keepdims
        )
        return
    # The last extreme is the first one in the reversed axis: n - 1 - index there.
    size = ctx.need_shape(node.inputs[0], "to reverse the axis")[axis]
    reverse = ctx.constant(np.arange(size - 1, -1, -1, dtype=np.int64), "reverse")
    flipped = ctx.temp("Gather", [ctx.input(node, 0), reverse], "flipped", axis=axis)
    index = ctx.temp(caffe2_type, [flipped], "index", axis=axis, keepdims=keepdims)
    last = ctx.constant(np.array(size - 1, dtype=np.int64), "last")
    ctx.emit("Sub", [last, index], [ctx.output(node)])


@ops.register("ArgMax", since=1)
def arg_max_v1(node: ir.Node, ctx: ExportContext) -> None:
    _arg(node, ctx, "ArgMax")


@ops.register("ArgMin", since=1)
def arg_min_v1(node: ir.Node, ctx: ExportContext) -> None:
    _arg(node, ctx, "ArgMin")
