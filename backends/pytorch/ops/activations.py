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


@ops.register("Elu", since=6)
def elu_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(F.elu, ctx.input(0), ctx.attr_float("alpha", 1.0))]


def _selu(x: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    return gamma * torch.where(x > 0, x, alpha * (torch.exp(x) - 1))


@ops.register("Selu", since=6)
def selu_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    alpha = ctx.attr_float("alpha", 1.67326319217681884765625)
    gamma = ctx.attr_float("gamma", 1.05070102214813232421875)
    return [ctx.call(_selu, ctx.input(0), alpha, gamma)]


@ops.register("Celu", since=12)
def celu_v12(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(F.celu, ctx.input(0), ctx.attr_float("alpha", 1.0))]


def _hard_sigmoid(x: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    return torch.clamp(alpha * x + beta, 0, 1)


@ops.register("HardSigmoid", since=6)
def hard_sigmoid_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    alpha, beta = ctx.attr_float("alpha", 0.2), ctx.attr_float("beta", 0.5)
    return [ctx.call(_hard_sigmoid, ctx.input(0), alpha, beta)]


def _hard_swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.clamp(x / 6 + 0.5, 0, 1)


@ops.register("HardSwish", since=14)
def hard_swish_v14(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_hard_swish, ctx.input(0))]


def _softplus(x: torch.Tensor) -> torch.Tensor:
    return torch.log1p(torch.exp(-torch.abs(x))) + torch.clamp(x, min=0)


@ops.register("Softplus", since=1)
def softplus_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_softplus, ctx.input(0))]


@ops.register("Softsign", since=1)
def softsign_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(F.softsign, ctx.input(0))]


@ops.register("Mish", since=18)
def mish_v18(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(F.mish, ctx.input(0))]


@ops.register("Gelu", since=20)
def gelu_v20(node: ir.Node, ctx: BuildContext) -> Outputs:
    approximate = ctx.attr_str("approximate", "none")
    return [ctx.call(F.gelu, ctx.input(0), approximate=approximate)]


def _thresholded_relu(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.where(x > alpha, x, torch.zeros((), dtype=x.dtype))


@ops.register("ThresholdedRelu", since=10)
def thresholded_relu_v10(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_thresholded_relu, ctx.input(0), ctx.attr_float("alpha", 1.0))]


def _prelu(x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    return torch.where(x < 0, x * slope, x)


@ops.register("PRelu", since=7)
def prelu_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_prelu, ctx.input(0), ctx.input(1))]


def _swish(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return x * torch.sigmoid(alpha * x)


@ops.register("Swish", since=24)
def swish_v24(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_swish, ctx.input(0), ctx.attr_float("alpha", 1.0))]
