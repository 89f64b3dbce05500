"""Activations: Relu, Sigmoid, Tanh, Gelu, Softmax, LogSoftmax, Erf, LeakyRelu, Elu and others."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import require_float, scalar_like
from unframe.backends.coreml.registry import ops


def _unary_float(ctx: ExportContext, op: str) -> list[Any]:
    require_float(ctx, op)
    return [getattr(ctx.mb, op)(x=ctx.input(0))]


def _param(ctx: ExportContext, value: Any) -> Any:
    """An activation's scalar parameter in the input's float type (MIL's type check refuses a
    float32 alpha beside a float16 x)."""
    return scalar_like(ctx, float(value)).val


@ops.register("Relu", since=6)
def relu_v6(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    if ctx.mil_dtype(ctx.input_dtype(0)) == "int32":
        return [ctx.mb.maximum(x=ctx.input(0), y=scalar_like(ctx, 0))]
    return _unary_float(ctx, "relu")


@ops.register("Sigmoid", since=6)
def sigmoid_v6(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _unary_float(ctx, "sigmoid")


@ops.register("Tanh", since=6)
def tanh_v6(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _unary_float(ctx, "tanh")


@ops.register("Erf", since=9)
def erf_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _unary_float(ctx, "erf")


@ops.register("Softplus", since=1)
def softplus_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _unary_float(ctx, "softplus")


@ops.register("Softsign", since=1)
def softsign_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _unary_float(ctx, "softsign")


@ops.register("Gelu", since=20)
def gelu_v20(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Gelu")
    mode = {"none": "EXACT", "tanh": "TANH_APPROXIMATION"}.get(ctx.attr("approximate"))
    if mode is None:
        raise ctx.error(f"approximate={ctx.attr('approximate')!r}: 'none' or 'tanh'")
    return [ctx.mb.gelu(x=ctx.input(0), mode=mode)]


@ops.register("Softmax", since=13)
def softmax_v13(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Softmax")
    return [ctx.mb.softmax(x=ctx.input(0), axis=int(ctx.attr("axis")))]


@ops.register("LogSoftmax", since=13)
def log_softmax_v13(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "LogSoftmax")
    x = ctx.input(0)
    axis = int(ctx.attr("axis"))
    # log(softmax) underflows to -inf; x - max - log(sum(exp(x - max))) does not.
    shifted = ctx.mb.sub(x=x, y=ctx.mb.reduce_max(x=x, axes=[axis], keep_dims=True))
    total = ctx.mb.reduce_sum(x=ctx.mb.exp(x=shifted), axes=[axis], keep_dims=True)
    return [ctx.mb.sub(x=shifted, y=ctx.mb.log(x=total))]


@ops.register("LeakyRelu", since=6)
def leaky_relu_v6(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "LeakyRelu")
    return [ctx.mb.leaky_relu(x=ctx.input(0), alpha=_param(ctx, ctx.attr("alpha")))]


@ops.register("Elu", since=6)
def elu_v6(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Elu")
    return [ctx.mb.elu(x=ctx.input(0), alpha=_param(ctx, ctx.attr("alpha")))]


@ops.register("Selu", since=6)
def selu_v6(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Selu")
    alpha, gamma = float(ctx.attr("alpha")), float(ctx.attr("gamma"))
    return [
        ctx.mb.mul(
            x=ctx.mb.elu(x=ctx.input(0), alpha=_param(ctx, alpha)), y=scalar_like(ctx, gamma)
        )
    ]


@ops.register("HardSigmoid", since=6)
def hard_sigmoid_v6(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "HardSigmoid")
    alpha, beta = float(ctx.attr("alpha")), float(ctx.attr("beta"))
    return [ctx.mb.sigmoid_hard(x=ctx.input(0), alpha=_param(ctx, alpha), beta=_param(ctx, beta))]


@ops.register("HardSwish", since=14)
def hard_swish_v14(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "HardSwish")
    x = ctx.input(0)
    return [
        ctx.mb.mul(
            x=x, y=ctx.mb.sigmoid_hard(x=x, alpha=_param(ctx, 1.0 / 6), beta=_param(ctx, 0.5))
        )
    ]


@ops.register("PRelu", since=7)
def prelu_v7(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "PRelu")
    x = ctx.input(0)
    negative = ctx.mb.minimum(x=x, y=scalar_like(ctx, 0.0))
    return [ctx.mb.add(x=ctx.mb.relu(x=x), y=ctx.mb.mul(x=negative, y=ctx.input(1)))]


@ops.register("ThresholdedRelu", since=10)
def thresholded_relu_v10(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "ThresholdedRelu")
    x = ctx.input(0)
    keep = ctx.mb.greater(x=x, y=scalar_like(ctx, float(ctx.attr("alpha"))))
    return [ctx.mb.select(cond=keep, a=x, b=scalar_like(ctx, 0.0))]


@ops.register("Swish", since=24)
def swish_v24(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Swish")
    x = ctx.input(0)
    scaled = ctx.mb.mul(x=x, y=scalar_like(ctx, float(ctx.attr("alpha"))))
    return [ctx.mb.mul(x=x, y=ctx.mb.sigmoid(x=scaled))]
