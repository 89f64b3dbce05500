"""Matrix product, elementwise arithmetic and activations."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from toyfw.frontend.context import ImportContext
from toyfw.frontend.registry import DOMAIN, ops
from toyfw.native import Layer


@ops.register("matmul", since=1, domain=DOMAIN)
def matmul(layer: Layer, ctx: ImportContext) -> None:
    ctx.emit("MatMul", [ctx.input(0), ctx.input(1)])


@ops.register("add", since=1, domain=DOMAIN)
def add(layer: Layer, ctx: ImportContext) -> None:
    ctx.emit("Add", [ctx.input(0), ctx.input(1)])


@ops.register("mul", since=1, domain=DOMAIN)
def mul(layer: Layer, ctx: ImportContext) -> None:
    ctx.emit("Mul", [ctx.input(0), ctx.input(1)])


@ops.register("scale", since=1, domain=DOMAIN)
def scale(layer: Layer, ctx: ImportContext) -> None:
    x = ctx.input(0)
    dtype = (x.dtype or ir.DataType.FLOAT).numpy()
    factor = ctx.make_constant(np.asarray(ctx.attr("factor"), dtype), "factor")
    ctx.emit("Mul", [x, factor])


@ops.register("relu", since=1, domain=DOMAIN)
def relu(layer: Layer, ctx: ImportContext) -> None:
    ctx.emit("Relu", [ctx.input(0)])


@ops.register("leaky_relu", since=1, domain=DOMAIN)
def leaky_relu(layer: Layer, ctx: ImportContext) -> None:
    ctx.emit("LeakyRelu", [ctx.input(0)], alpha=float(ctx.attr("alpha", 0.01)))


@ops.register("sigmoid", since=1, domain=DOMAIN)
def sigmoid(layer: Layer, ctx: ImportContext) -> None:
    ctx.emit("Sigmoid", [ctx.input(0)])
