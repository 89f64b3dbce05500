"""Activation functions (Relu, Sigmoid, LeakyRelu, Elu, Gelu, ...)."""

from __future__ import annotations

from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ir, ops, torch

F = torch.nn.functional


@ops.register("Relu", since=6)
def relu_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.relu, ctx.input(0))]


@ops.register("Sigmoid", since=6)
def sigmoid_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.sigmoid, ctx.input(0))]


@ops.register("Tanh", since=6)
def tanh_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.tanh, ctx.input(0))]


@ops.register("LeakyRelu", since=6)
def leaky_relu_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(F.leaky_relu, ctx.input(0), ctx.attr_float("alpha", 0.01))]
