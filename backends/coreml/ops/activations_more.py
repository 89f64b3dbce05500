"""More activations: Celu, Shrink, Mish, Hardmax, and Softmax/LogSoftmax before opset 13.

Before opset 13, Softmax, LogSoftmax and Hardmax flatten the input to 2-D at ``axis`` and
normalize over the whole second dim; those versions reshape to that 2-D view and back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import require_float, scalar_like
from unframe.backends.coreml.registry import ops


@ops.register("Celu", since=12)
def celu_v12(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """alpha * elu(x / alpha): for x > 0 that is x, below alpha * (exp(x / alpha) - 1)."""
    require_float(ctx, "Celu")
    mb = ctx.mb
    alpha = float(ctx.attr("alpha", 1.0))
    scaled = mb.real_div(x=ctx.input(0), y=scalar_like(ctx, alpha))
    # elu's alpha must be in x's type (a float32 1.0 fails MIL's type check on float16)
    return [mb.mul(x=mb.elu(x=scaled, alpha=scalar_like(ctx, 1.0).val), y=scalar_like(ctx, alpha))]


@ops.register("Shrink", since=9)
def shrink_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Shrink")
    mb = ctx.mb
    x = ctx.input(0)
    lambd, bias = float(ctx.attr("lambd", 0.5)), float(ctx.attr("bias", 0.0))
    above = mb.select(
        cond=mb.greater(x=x, y=scalar_like(ctx, lambd)),
        a=mb.sub(x=x, y=scalar_like(ctx, bias)),
        b=scalar_like(ctx, 0.0),
    )
    return [
        mb.select(
            cond=mb.less(x=x, y=scalar_like(ctx, -lambd)),
            a=mb.add(x=x, y=scalar_like(ctx, bias)),
            b=above,
        )
    ]


@ops.register("Mish", since=18)
def mish_v18(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Mish")
    mb = ctx.mb
    x = ctx.input(0)
    return [mb.mul(x=x, y=mb.tanh(x=mb.softplus(x=x)))]


def _hardmax(ctx: ExportContext, x: Any, axis: int, rank: int, size: int) -> Any:
    """One where the first maximum along ``axis`` lies, zero elsewhere."""
    mb = ctx.mb
    first = mb.reduce_argmax(x=x, axis=axis, keep_dims=True)
    positions = np.arange(size, dtype=np.int32).reshape([-1] + [1] * (rank - 1 - axis))
    hit = mb.equal(x=first, y=ctx.make_constant(positions))
    return mb.cast(x=hit, dtype=ctx.mil_dtype(ctx.input_dtype(0)))


def _axis(ctx: ExportContext, default: int) -> tuple[int, int, tuple[int | None, ...]]:
    shape = ctx.input_shape(0)
    if shape is None:
        raise ctx.error("the rank of the input is unknown")
    rank = len(shape)
    axis = int(ctx.attr("axis", default))
    return (axis + rank if axis < 0 else axis), rank, shape


@ops.register("Hardmax", since=13)
def hardmax_v13(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Hardmax")
    axis, rank, shape = _axis(ctx, -1)
    if shape[axis] is None:
        raise ctx.error(f"axis {axis} of unknown size: its one-hot needs the size")
    return [_hardmax(ctx, ctx.input(0), axis, rank, int(shape[axis]))]  # type: ignore[arg-type]


def _on_2d(ctx: ExportContext, apply: Callable[[Any, int], Any], what: str) -> Sequence[Any]:
    """``apply`` over dim 1 of the input flattened to 2-D at ``axis`` (opset < 13), reshaped back."""
    require_float(ctx, what)
    axis, rank, shape = _axis(ctx, 1)
    if any(d is None for d in shape[axis:]):
        raise ctx.error("the dims from axis on must be known to flatten them")
    inner = int(np.prod([int(d) for d in shape[axis:]]))  # type: ignore[arg-type]
    mb = ctx.mb
    x = ctx.input(0)
    flat = mb.reshape(x=x, shape=[-1, inner]) if rank != 2 or axis != 1 else x
    y = apply(flat, inner)
    return [mb.reshape(x=y, shape=mb.shape(x=x)) if flat is not x else y]


@ops.register("Hardmax", since=1)
def hardmax_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _on_2d(ctx, lambda flat, inner: _hardmax(ctx, flat, 1, 2, inner), "Hardmax")


@ops.register("Softmax", since=1)
def softmax_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _on_2d(ctx, lambda flat, _: ctx.mb.softmax(x=flat, axis=1), "Softmax")


@ops.register("LogSoftmax", since=1)
def log_softmax_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    mb = ctx.mb

    def log_softmax(flat: Any, _: int) -> Any:
        shifted = mb.sub(x=flat, y=mb.reduce_max(x=flat, axes=[1], keep_dims=True))
        total = mb.reduce_sum(x=mb.exp(x=shifted), axes=[1], keep_dims=True)
        return mb.sub(x=shifted, y=mb.log(x=total))

    return _on_2d(ctx, log_softmax, "LogSoftmax")
