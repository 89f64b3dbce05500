"""MIL constants, element-wise ops and activations (iOS15 opset)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.frontends.coreml.context import MilContext
from unframe.frontends.coreml.registry import IOS15, MIL_DOMAIN, ops

MilConverter = Callable[[Any, MilContext], Any]

#: MIL's ``cast`` dtype names and the ONNX types they cast to.
_CAST_TYPES = {
    "fp16": ir.DataType.FLOAT16,
    "fp32": ir.DataType.FLOAT,
    "int32": ir.DataType.INT32,
    "int64": ir.DataType.INT64,
    "int16": ir.DataType.INT16,
    "int8": ir.DataType.INT8,
    "uint8": ir.DataType.UINT8,
    "uint16": ir.DataType.UINT16,
    "bool": ir.DataType.BOOL,
}


@ops.register("const", since=IOS15, domain=MIL_DOMAIN)
def const(op: Any, ctx: MilContext) -> None:
    """Held until a node reads it as a tensor: most constants are parameters (axes, flags)."""
    ctx.constants[op.outputs[0].name] = op.outputs[0].val


def _binary(onnx_type: str) -> MilConverter:
    def convert(op: Any, ctx: MilContext) -> ir.Value:
        return ctx.op1(onnx_type, [ctx.value("x"), ctx.value("y")])

    return convert


_BINARY = {
    "add": "Add", "sub": "Sub", "mul": "Mul", "real_div": "Div", "pow": "Pow",
    "maximum": "Max", "minimum": "Min", "equal": "Equal",
    "less": "Less", "less_equal": "LessOrEqual", "greater": "Greater",
    "greater_equal": "GreaterOrEqual", "logical_and": "And", "logical_or": "Or",
    "logical_xor": "Xor",
}  # fmt: skip
for _mil, _onnx in _BINARY.items():
    _converter = _binary(_onnx)
    _converter.__name__ = _converter.__qualname__ = _mil
    ops.register(_mil, since=IOS15, domain=MIL_DOMAIN)(_converter)


@ops.register("not_equal", since=IOS15, domain=MIL_DOMAIN)
def not_equal(op: Any, ctx: MilContext) -> ir.Value:
    return ctx.op1("Not", [ctx.op1("Equal", [ctx.value("x"), ctx.value("y")])])


@ops.register("floor_div", since=IOS15, domain=MIL_DOMAIN)
def floor_div(op: Any, ctx: MilContext) -> ir.Value:
    x, y = ctx.value("x"), ctx.value("y")
    if ctx.dtype("x").kind != "f":
        # ONNX's integer Div truncates; MIL floors: divide in double, floor, cast back.
        as_double = [ctx.op1("Cast", [v], {"to": ir.DataType.DOUBLE}) for v in (x, y)]
        floored = ctx.op1("Floor", [ctx.op1("Div", as_double)])
        return ctx.op1("Cast", [floored], {"to": ir.DataType.from_numpy(ctx.dtype("x"))})
    return ctx.op1("Floor", [ctx.op1("Div", [x, y])])


@ops.register("mod", since=IOS15, domain=MIL_DOMAIN)
def mod(op: Any, ctx: MilContext) -> ir.Value:
    """MIL's mod takes the divisor's sign (Python's %): ONNX Mod with fmod=0 for integers."""
    x, y = ctx.value("x"), ctx.value("y")
    if ctx.dtype("x").kind != "f":
        return ctx.op1("Mod", [x, y], {"fmod": 0})
    floored = ctx.op1("Floor", [ctx.op1("Div", [x, y])])
    return ctx.op1("Sub", [x, ctx.op1("Mul", [floored, y])])


def _unary(onnx_type: str) -> MilConverter:
    def convert(op: Any, ctx: MilContext) -> ir.Value:
        return ctx.op1(onnx_type, [ctx.value("x")])

    return convert


_UNARY = {
    "relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "exp": "Exp", "sqrt": "Sqrt",
    "abs": "Abs", "erf": "Erf", "sin": "Sin", "cos": "Cos", "tan": "Tan", "asin": "Asin",
    "acos": "Acos", "atan": "Atan", "sinh": "Sinh", "cosh": "Cosh", "atanh": "Atanh",
    "floor": "Floor", "ceil": "Ceil", "round": "Round", "sign": "Sign", "softplus": "Softplus",
    "softsign": "Softsign", "logical_not": "Not", "identity": "Identity",
}  # fmt: skip
for _mil, _onnx in _UNARY.items():
    _converter = _unary(_onnx)
    _converter.__name__ = _converter.__qualname__ = _mil
    ops.register(_mil, since=IOS15, domain=MIL_DOMAIN)(_converter)


def _like(ctx: MilContext, value: float, name: str = "x") -> ir.Value:
    """A scalar constant of input ``name``'s element type."""
    return ctx.scalar(value, ctx.dtype(name))


@ops.register("square", since=IOS15, domain=MIL_DOMAIN)
def square(op: Any, ctx: MilContext) -> ir.Value:
    x = ctx.value("x")
    return ctx.op1("Mul", [x, x])


@ops.register("exp2", since=IOS15, domain=MIL_DOMAIN)
def exp2(op: Any, ctx: MilContext) -> ir.Value:
    return ctx.op1("Pow", [_like(ctx, 2.0), ctx.value("x")])


@ops.register("log", since=IOS15, domain=MIL_DOMAIN)
def log(op: Any, ctx: MilContext) -> ir.Value:
    """MIL computes log(x + epsilon)."""
    shifted = ctx.op1("Add", [ctx.value("x"), _like(ctx, float(ctx.attr("epsilon", 1e-45)))])
    return ctx.op1("Log", [shifted])


@ops.register("rsqrt", since=IOS15, domain=MIL_DOMAIN)
def rsqrt(op: Any, ctx: MilContext) -> ir.Value:
    """MIL computes 1 / sqrt(x + epsilon)."""
    shifted = ctx.op1("Add", [ctx.value("x"), _like(ctx, float(ctx.attr("epsilon", 1e-12)))])
    return ctx.op1("Reciprocal", [ctx.op1("Sqrt", [shifted])])


@ops.register("inverse", since=IOS15, domain=MIL_DOMAIN)
def inverse(op: Any, ctx: MilContext) -> ir.Value:
    """MIL computes 1 / (x + epsilon)."""
    shifted = ctx.op1("Add", [ctx.value("x"), _like(ctx, float(ctx.attr("epsilon", 1e-4)))])
    return ctx.op1("Reciprocal", [shifted])


@ops.register("clip", since=IOS15, domain=MIL_DOMAIN)
def clip(op: Any, ctx: MilContext) -> ir.Value:
    return ctx.op1("Clip", [ctx.value("x"), ctx.value("alpha"), ctx.value("beta")])


@ops.register("relu6", since=IOS15, domain=MIL_DOMAIN)
def relu6(op: Any, ctx: MilContext) -> ir.Value:
    return ctx.op1("Clip", [ctx.value("x"), _like(ctx, 0.0), _like(ctx, 6.0)])


@ops.register("leaky_relu", since=IOS15, domain=MIL_DOMAIN)
def leaky_relu(op: Any, ctx: MilContext) -> ir.Value:
    return ctx.op1("LeakyRelu", [ctx.value("x")], {"alpha": float(ctx.attr("alpha", 0.01))})


@ops.register("elu", since=IOS15, domain=MIL_DOMAIN)
def elu(op: Any, ctx: MilContext) -> ir.Value:
    return ctx.op1("Elu", [ctx.value("x")], {"alpha": float(ctx.attr("alpha", 1.0))})


@ops.register("thresholded_relu", since=IOS15, domain=MIL_DOMAIN)
def thresholded_relu(op: Any, ctx: MilContext) -> ir.Value:
    return ctx.op1("ThresholdedRelu", [ctx.value("x")], {"alpha": float(ctx.attr("alpha", 1.0))})


@ops.register("sigmoid_hard", since=IOS15, domain=MIL_DOMAIN)
def sigmoid_hard(op: Any, ctx: MilContext) -> ir.Value:
    attrs = {"alpha": float(ctx.attr("alpha", 0.2)), "beta": float(ctx.attr("beta", 0.5))}
    return ctx.op1("HardSigmoid", [ctx.value("x")], attrs)


@ops.register("silu", since=IOS15, domain=MIL_DOMAIN)
def silu(op: Any, ctx: MilContext) -> ir.Value:
    x = ctx.value("x")
    return ctx.op1("Mul", [x, ctx.op1("Sigmoid", [x])])


@ops.register("scaled_tanh", since=IOS15, domain=MIL_DOMAIN)
def scaled_tanh(op: Any, ctx: MilContext) -> ir.Value:
    inner = ctx.op1("Mul", [ctx.value("x"), _like(ctx, float(ctx.attr("beta", 1.0)))])
    return ctx.op1("Mul", [ctx.op1("Tanh", [inner]), _like(ctx, float(ctx.attr("alpha", 1.0)))])


@ops.register("linear_activation", since=IOS15, domain=MIL_DOMAIN)
def linear_activation(op: Any, ctx: MilContext) -> ir.Value:
    scaled = ctx.op1("Mul", [ctx.value("x"), _like(ctx, float(ctx.attr("alpha")))])
    return ctx.op1("Add", [scaled, _like(ctx, float(ctx.attr("beta", 0.0)))])


@ops.register("prelu", since=IOS15, domain=MIL_DOMAIN)
def prelu(op: Any, ctx: MilContext) -> ir.Value:
    """``alpha`` holds one slope per channel (axis 1 of a rank >= 3 input)."""
    alpha = np.asarray(ctx.attr("alpha"), dtype=ctx.dtype("x"))
    slopes = alpha.reshape((-1,) + (1,) * (ctx.rank("x") - 2))
    return ctx.op1("PRelu", [ctx.value("x"), ctx.make_constant(slopes, "alpha")])


@ops.register("gelu", since=IOS15, domain=MIL_DOMAIN)
def gelu(op: Any, ctx: MilContext) -> ir.Value:
    """The three modes from their formulas (ONNX Gelu is opset 20; the frontend writes 18)."""
    x = ctx.value("x")
    mode = str(ctx.attr("mode", "EXACT"))
    if mode == "SIGMOID_APPROXIMATION":
        return ctx.op1("Mul", [x, ctx.op1("Sigmoid", [ctx.op1("Mul", [x, _like(ctx, 1.702)])])])
    if mode == "EXACT":
        inner = ctx.op1("Erf", [ctx.op1("Mul", [x, _like(ctx, 1 / math.sqrt(2.0))])])
    elif mode == "TANH_APPROXIMATION":
        cube = ctx.op1("Mul", [ctx.op1("Mul", [x, x]), x])
        poly = ctx.op1("Add", [x, ctx.op1("Mul", [cube, _like(ctx, 0.044715)])])
        inner = ctx.op1("Tanh", [ctx.op1("Mul", [poly, _like(ctx, math.sqrt(2 / math.pi))])])
    else:
        raise ctx.error(f"gelu mode {mode!r} is not one of MIL's three")
    half_x = ctx.op1("Mul", [x, _like(ctx, 0.5)])
    return ctx.op1("Mul", [half_x, ctx.op1("Add", [inner, _like(ctx, 1.0)])])


@ops.register("softplus_parametric", since=IOS15, domain=MIL_DOMAIN)
def softplus_parametric(op: Any, ctx: MilContext) -> ir.Value:
    """alpha * log(1 + exp(beta * x)), alpha and beta per channel."""
    shape = (-1,) + (1,) * (ctx.rank("x") - 2)
    alpha = ctx.make_constant(np.asarray(ctx.attr("alpha"), ctx.dtype("x")).reshape(shape), "alpha")
    beta = ctx.make_constant(np.asarray(ctx.attr("beta"), ctx.dtype("x")).reshape(shape), "beta")
    return ctx.op1("Mul", [alpha, ctx.op1("Softplus", [ctx.op1("Mul", [ctx.value("x"), beta])])])


@ops.register("cast", since=IOS15, domain=MIL_DOMAIN)
def cast(op: Any, ctx: MilContext) -> ir.Value:
    name = str(ctx.attr("dtype"))
    if name not in _CAST_TYPES:
        raise ctx.error(f"casts to {name!r}, which ONNX has no type for")
    return ctx.op1("Cast", [ctx.value("x")], {"to": _CAST_TYPES[name]})


@ops.register("select", since=IOS15, domain=MIL_DOMAIN)
def select(op: Any, ctx: MilContext) -> ir.Value:
    condition = ctx.value("cond")
    if ctx.dtype("cond") != np.bool_:
        condition = ctx.op1("Cast", [condition], {"to": ir.DataType.BOOL})
    return ctx.op1("Where", [condition, ctx.value("a"), ctx.value("b")])
