"""Caffe2 elementwise math: arithmetic with legacy broadcasting, N-ary ops, unary functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.native import IR_DTYPES, caffe2_pb2
from unframe.frontends.caffe2.context import Args, ImportContext
from unframe.frontends.caffe2.registry import DOMAIN, ops

Op: TypeAlias = caffe2_pb2.OperatorDef
Converter = Callable[[Op, Args, ImportContext], None]

_BINARY = {
    "Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "EQ": "Equal", "NE": "NE",
    "LT": "Less", "LE": "LessOrEqual", "GT": "Greater", "GE": "GreaterOrEqual", "And": "And",
    "Or": "Or", "Xor": "Xor", "BitwiseAnd": "BitwiseAnd", "BitwiseOr": "BitwiseOr",
    "BitwiseXor": "BitwiseXor",
}  # fmt: skip
_UNARY = {
    "Abs": "Abs", "Acos": "Acos", "Asin": "Asin", "Atan": "Atan", "Cos": "Cos", "Sin": "Sin",
    "Tan": "Tan", "Cosh": "Cosh", "Sinh": "Sinh", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt",
    "Negative": "Neg", "Sign": "Sign", "Ceil": "Ceil", "Floor": "Floor", "Not": "Not",
    "Erf": "Erf", "Reciprocal": "Reciprocal", "Copy": "Identity", "Alias": "Identity",
    "StopGradient": "Identity", "Round": "Round",
}  # fmt: skip
_NARY = {"Sum": "Sum", "Mean": "Mean", "Max": "Max", "Min": "Min"}


def legacy_operand(args: Args, ctx: ImportContext, a: ir.Value, b: ir.Value) -> ir.Value:
    """B reshaped so that numpy broadcasting matches Caffe2's ``broadcast=1`` + ``axis`` rule."""
    if not args.integer("broadcast", 0):
        args.used.update({"axis", "axis_str"})
        return b
    axis = args.integer("axis", -1)
    if args.has("axis_str"):
        order = args.string("order", "NCHW")
        axis = order.index(args.string("axis_str", "C"))
    if axis == -1:
        return b  # B aligned to A's end is numpy's rule
    rank_a = ctx.rank(a)
    const = ctx.known_value(b)
    if const is not None:
        core = const.reshape(const.shape)
        trailing = rank_a - axis - core.ndim
        if trailing < 0:
            raise ctx.bad(f"broadcast axis {axis} leaves no room for B of shape {const.shape}")
        return ctx.make_constant(core.reshape(core.shape + (1,) * trailing), "broadcast")
    trailing = rank_a - axis - ctx.rank(b)
    if trailing <= 0:
        return b
    return ctx.op1("Unsqueeze", [b, ctx.ints([-i for i in range(trailing, 0, -1)])])


def _binary(onnx_type: str) -> Converter:
    def convert(op: Op, args: Args, ctx: ImportContext) -> None:
        a = ctx.input(0)
        b = legacy_operand(args, ctx, a, ctx.input(1))
        if onnx_type == "NE":
            ctx.output(0, ctx.op1("Not", [ctx.op1("Equal", [a, b])]))
            return
        ctx.output(0, ctx.op1(onnx_type, [a, b]))

    convert.__name__ = convert.__qualname__ = onnx_type.lower()
    return convert


def _unary(onnx_type: str) -> Converter:
    def convert(op: Op, args: Args, ctx: ImportContext) -> None:
        ctx.output(0, ctx.op1(onnx_type, [ctx.input(0)]))

    convert.__name__ = convert.__qualname__ = onnx_type.lower()
    return convert


def _nary(onnx_type: str) -> Converter:
    def convert(op: Op, args: Args, ctx: ImportContext) -> None:
        inputs: list[ir.Value | None] = [ctx.input(i) for i in range(len(op.input))]
        ctx.output(0, ctx.op1(onnx_type, inputs))

    convert.__name__ = convert.__qualname__ = onnx_type.lower()
    return convert


for _caffe2, _onnx in _BINARY.items():
    ops.register(_caffe2, since=1, domain=DOMAIN)(_binary(_onnx))
for _caffe2, _onnx in _UNARY.items():
    ops.register(_caffe2, since=1, domain=DOMAIN)(_unary(_onnx))
for _caffe2, _onnx in _NARY.items():
    ops.register(_caffe2, since=1, domain=DOMAIN)(_nary(_onnx))


def _scalar(ctx: ImportContext, like: ir.Value, value: float) -> ir.Value:
    dtype = (like.dtype or ir.DataType.FLOAT).numpy()
    return ctx.make_constant(np.array(value, dtype=dtype), "scalar")


@ops.register("Scale", since=1, domain=DOMAIN)
def scale(op: Op, args: Args, ctx: ImportContext) -> None:
    x = ctx.input(0)
    ctx.output(0, ctx.op1("Mul", [x, _scalar(ctx, x, args.number("scale", 1.0))]))


@ops.register("Pow", since=1, domain=DOMAIN)
def pow_(op: Op, args: Args, ctx: ImportContext) -> None:
    x = ctx.input(0)
    if args.has("exponent"):
        ctx.output(0, ctx.op1("Pow", [x, _scalar(ctx, x, args.number("exponent", 1.0))]))
        return
    ctx.output(0, ctx.op1("Pow", [x, legacy_operand(args, ctx, x, ctx.input(1))]))


@ops.register("Cube", since=1, domain=DOMAIN)
def cube(op: Op, args: Args, ctx: ImportContext) -> None:
    x = ctx.input(0)
    ctx.output(0, ctx.op1("Mul", [ctx.op1("Mul", [x, x]), x]))


@ops.register("Rsqrt", since=1, domain=DOMAIN)
def rsqrt(op: Op, args: Args, ctx: ImportContext) -> None:
    ctx.output(0, ctx.op1("Reciprocal", [ctx.op1("Sqrt", [ctx.input(0)])]))


@ops.register("Log1p", since=1, domain=DOMAIN)
def log1p(op: Op, args: Args, ctx: ImportContext) -> None:
    x = ctx.input(0)
    ctx.output(0, ctx.op1("Log", [ctx.op1("Add", [x, _scalar(ctx, x, 1.0)])]))


@ops.register("Mod", since=1, domain=DOMAIN)
def mod(op: Op, args: Args, ctx: ImportContext) -> None:
    # Caffe2's Mod has C's sign (of the dividend) unless sign_follow_divisor is set.
    x = ctx.input(0)
    divisor = ctx.make_constant(
        np.array(args.integer("divisor", 0), dtype=(x.dtype or ir.DataType.INT64).numpy())
    )
    fmod = 0 if args.integer("sign_follow_divisor", 0) else 1
    ctx.output(0, ctx.op1("Mod", [x, divisor], {"fmod": fmod}))


@ops.register("Sqr", since=1, domain=DOMAIN)
def sqr(op: Op, args: Args, ctx: ImportContext) -> None:
    x = ctx.input(0)
    ctx.output(0, ctx.op1("Mul", [x, x]))


@ops.register("Clip", since=1, domain=DOMAIN)
def clip(op: Op, args: Args, ctx: ImportContext) -> None:
    x = ctx.input(0)
    low = _scalar(ctx, x, args.number("min", float("-inf"))) if args.has("min") else None
    high = _scalar(ctx, x, args.number("max", float("inf"))) if args.has("max") else None
    ctx.output(0, ctx.op1("Clip", [x, low, high]))


@ops.register("Cast", since=1, domain=DOMAIN)
def cast(op: Op, args: Args, ctx: ImportContext) -> None:
    to = args.integer("to", caffe2_pb2.TensorProto.FLOAT)
    if to not in IR_DTYPES:
        raise ctx.unsupported(f"Cast to Caffe2 data type {to} has no ONNX equivalent")
    ctx.output(0, ctx.op1("Cast", [ctx.input(0)], {"to": IR_DTYPES[to]}))


def _transposed(ctx: ImportContext, x: ir.Value) -> ir.Value:
    rank = ctx.rank(x)
    perm = [*range(rank - 2), rank - 1, rank - 2]
    return ctx.op1("Transpose", [x], {"perm": perm})


@ops.register("MatMul", since=1, domain=DOMAIN)
def matmul(op: Op, args: Args, ctx: ImportContext) -> None:
    a, b = ctx.input(0), ctx.input(1)
    axis_a, axis_b = args.integer("axis_a", 1), args.integer("axis_b", 1)
    if a.shape is None or len(a.shape) != 2:
        a = ctx.op1("Flatten", [a], {"axis": axis_a})
    if b.shape is None or len(b.shape) != 2:
        b = ctx.op1("Flatten", [b], {"axis": axis_b})
    attrs = {"transA": args.integer("trans_a", 0), "transB": args.integer("trans_b", 0)}
    ctx.output(0, ctx.op1("Gemm", [a, b], attrs))


@ops.register("BatchMatMul", since=1, domain=DOMAIN)
def batch_matmul(op: Op, args: Args, ctx: ImportContext) -> None:
    a, b = ctx.input(0), ctx.input(1)
    args.integer("broadcast", 0)
    if args.integer("trans_a", 0):
        a = _transposed(ctx, a)
    if args.integer("trans_b", 0):
        b = _transposed(ctx, b)
    ctx.output(0, ctx.op1("MatMul", [a, b]))


@ops.register("Where", since=1, domain=DOMAIN)
def where(op: Op, args: Args, ctx: ImportContext) -> None:
    if args.integer("broadcast_on_rows", 0):
        raise ctx.unsupported("Where with broadcast_on_rows=1 is not imported")
    ctx.output(0, ctx.op1("Where", [ctx.input(0), ctx.input(1), ctx.input(2)]))
