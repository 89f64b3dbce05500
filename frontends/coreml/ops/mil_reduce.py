"""MIL reductions over axes, and the arg reductions over one axis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.frontends.coreml.context import MilContext
from unframe.frontends.coreml.registry import IOS15, MIL_DOMAIN, ops

_REDUCE = {
    "reduce_sum": "ReduceSum", "reduce_mean": "ReduceMean", "reduce_max": "ReduceMax",
    "reduce_min": "ReduceMin", "reduce_prod": "ReduceProd", "reduce_l1_norm": "ReduceL1",
    "reduce_l2_norm": "ReduceL2", "reduce_log_sum": "ReduceLogSum",
    "reduce_log_sum_exp": "ReduceLogSumExp", "reduce_sum_square": "ReduceSumSquare",
}  # fmt: skip


def _reduction(onnx_type: str) -> Callable[[Any, MilContext], ir.Value]:
    def convert(op: Any, ctx: MilContext) -> ir.Value:
        """No ``axes``: every axis (ONNX's default for an absent axes input)."""
        inputs = [ctx.value("x")]
        axes = ctx.attr("axes", None)
        if axes is not None:
            inputs.append(ctx.ints(list(np.atleast_1d(axes))))
        return ctx.op1(onnx_type, inputs, {"keepdims": int(bool(ctx.attr("keep_dims", False)))})

    return convert


for _mil, _onnx in _REDUCE.items():
    _converter = _reduction(_onnx)
    _converter.__name__ = _converter.__qualname__ = _mil
    ops.register(_mil, since=IOS15, domain=MIL_DOMAIN)(_converter)


def _arg(ctx: MilContext, onnx_type: str) -> ir.Value:
    """MIL's indices are int32, ONNX's int64."""
    attrs = {"axis": int(ctx.attr("axis", -1)), "keepdims": int(bool(ctx.attr("keep_dims", False)))}
    found = ctx.op1(onnx_type, [ctx.value("x")], attrs)
    return ctx.op1("Cast", [found], {"to": ir.DataType.INT32})


@ops.register("reduce_argmax", since=IOS15, domain=MIL_DOMAIN)
def reduce_argmax(op: Any, ctx: MilContext) -> ir.Value:
    return _arg(ctx, "ArgMax")


@ops.register("reduce_argmin", since=IOS15, domain=MIL_DOMAIN)
def reduce_argmin(op: Any, ctx: MilContext) -> ir.Value:
    return _arg(ctx, "ArgMin")
