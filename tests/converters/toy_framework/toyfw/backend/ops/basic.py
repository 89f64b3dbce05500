"""Matrix product, elementwise arithmetic and activations."""

from __future__ import annotations

import onnx_ir as ir

from toyfw.backend.context import ExportContext
from toyfw.backend.registry import ops


@ops.register("MatMul", since=13)
def matmul_v13(node: ir.Node, ctx: ExportContext) -> None:
    ctx.emit("matmul", [ctx.input(0), ctx.input(1)])


@ops.register("Add", since=14)
def add_v14(node: ir.Node, ctx: ExportContext) -> None:
    ctx.emit("add", [ctx.input(0), ctx.input(1)])


@ops.register("Mul", since=14)
def mul_v14(node: ir.Node, ctx: ExportContext) -> None:
    factor = ctx.constant_input(1)
    if factor is not None and factor.size == 1:  # known before run time: toyfw's scale layer
        ctx.emit("scale", [ctx.input(0)], factor=float(factor.reshape(())))
    else:
        ctx.emit("mul", [ctx.input(0), ctx.input(1)])


@ops.register("Pow", since=15)
def pow_v15(node: ir.Node, ctx: ExportContext) -> None:
    exponent = ctx.constant_input(1)
    if exponent is None or exponent.size != 1 or float(exponent.reshape(())) != 2:
        raise ctx.error("toyfw squares only: the exponent must be a constant 2")
    ctx.emit("mul", [ctx.input(0), ctx.input(0)])


@ops.register("Relu", since=14)
def relu_v14(node: ir.Node, ctx: ExportContext) -> None:
    ctx.emit("relu", [ctx.input(0)])


@ops.register("LeakyRelu", since=16)
def leaky_relu_v16(node: ir.Node, ctx: ExportContext) -> None:
    ctx.emit("leaky_relu", [ctx.input(0)], alpha=float(ctx.attr("alpha")))


@ops.register("Sigmoid", since=13)
def sigmoid_v13(node: ir.Node, ctx: ExportContext) -> None:
    ctx.emit("sigmoid", [ctx.input(0)])
