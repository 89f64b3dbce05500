"""Reductions: ReduceMean/Sum/Max/Min/Prod/L1/L2/SumSquare/LogSumExp, ArgMax, ArgMin."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
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
    "ReduceLogSumExp": "reduce_log_sum_exp",
}


def _reduce(ctx: ExportContext, op: str, axes: list[int] | None) -> list[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    keep = bool(ctx.attr("keepdims", 1))
    if not axes:
        if int(ctx.attr("noop_with_empty_axes", 0)):
            return [ctx.mb.identity(x=ctx.input(0))]
        axes = None
    return [getattr(ctx.mb, op)(x=ctx.input(0), axes=axes, keep_dims=keep)]


def _axes_input(ctx: ExportContext) -> list[int] | None:
    if not ctx.has_input(1):
        return None
    axes = ctx.ints(1)
    if axes is None:
        raise ctx.error("axes computed at run time")
    return axes


def _register(onnx_op: str, mil_op: str) -> None:
    def by_attribute(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
        return _reduce(ctx, mil_op, ctx.attr("axes", None))

    def by_input(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
        return _reduce(ctx, mil_op, _axes_input(ctx))

    by_attribute.__name__ = f"{onnx_op.lower()}_v11"
    ops.register(onnx_op, since=11)(by_attribute)
    # ReduceSum took its axes as an input from 13, the others from 18.
    since = 13 if onnx_op == "ReduceSum" else 18
    by_input.__name__ = f"{onnx_op.lower()}_v{since}"
    ops.register(onnx_op, since=since)(by_input)


for _onnx_op, _mil_op in _REDUCTIONS.items():
    _register(_onnx_op, _mil_op)


def _arg(ctx: ExportContext, op: str) -> list[Any]:
    if int(ctx.attr("select_last_index", 0)):
        raise ctx.error("select_last_index=1")
    return [
        getattr(ctx.mb, op)(
            x=ctx.input(0), axis=int(ctx.attr("axis", 0)), keep_dims=bool(ctx.attr("keepdims", 1))
        )
    ]


@ops.register("ArgMax", since=11)
def argmax_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _arg(ctx, "reduce_argmax")


@ops.register("ArgMin", since=11)
def argmin_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _arg(ctx, "reduce_argmin")
