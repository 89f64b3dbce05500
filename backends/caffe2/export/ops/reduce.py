"""Reductions along axes and arg-reductions."""

from __future__ import annotations

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
                raise ctx.error("Caffe2 needs the axes as a constant (they are a run-time input)")
    else:
        axes = attr_ints(node, "axes")
    if not axes:
        if attr_int(node, "noop_with_empty_axes", 0):
            return None
        axes = list(range(rank))
    return sorted(normalize_axis(ctx, a, rank) for a in axes)


def _reduce(onnx_type: str, from_input: bool, version: int) -> Converter:
    pre, caffe2_type, post = _COMPOSED.get(onnx_type, (None, onnx_type, None))

    def convert(node: ir.Node, ctx: ExportContext) -> None:
        axes = _axes(node, ctx, from_input)
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
    if attr_int(node, "select_last_index", 0):
        raise ctx.error("select_last_index=1 has no Caffe2 equivalent")
    rank = ctx.need_rank(node.inputs[0])
    axis = normalize_axis(ctx, attr_int(node, "axis", 0), rank)
    keepdims = attr_int(node, "keepdims", 1)
    ctx.emit(caffe2_type, [ctx.input(node, 0)], [ctx.output(node)], axis=axis, keepdims=keepdims)


@ops.register("ArgMax", since=1)
def arg_max_v1(node: ir.Node, ctx: ExportContext) -> None:
    _arg(node, ctx, "ArgMax")


@ops.register("ArgMin", since=1)
def arg_min_v1(node: ir.Node, ctx: ExportContext) -> None:
    _arg(node, ctx, "ArgMin")
