"""Elementwise arithmetic, math, comparisons, logic, Where, Cast, Clip and Identity."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import (
    is_float,
    require_float,
    scalar_like,
    wrap_integer,
)
from unframe.backends.coreml.registry import ops


def _binary(ctx: ExportContext, op: str) -> list[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    return [getattr(ctx.mb, op)(x=ctx.input(0), y=ctx.input(1))]


def _register_binary(onnx_op: str, since: int, mil_op: str) -> None:
    def convert(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
        return _binary(ctx, mil_op)

    convert.__name__ = f"{onnx_op.lower()}_v{since}"
    ops.register(onnx_op, since=since)(convert)


for _onnx_op, _since, _mil_op in [
    ("Add", 7, "add"),
    ("Sub", 7, "sub"),
    ("Mul", 7, "mul"),
    ("Equal", 7, "equal"),
    ("Less", 7, "less"),
    ("Greater", 7, "greater"),
    ("LessOrEqual", 12, "less_equal"),
    ("GreaterOrEqual", 12, "greater_equal"),
    ("And", 7, "logical_and"),
    ("Or", 7, "logical_or"),
    ("Xor", 7, "logical_xor"),
]:
    _register_binary(_onnx_op, _since, _mil_op)


def _unary(ctx: ExportContext, op: str, **kwargs: Any) -> list[Any]:
    require_float(ctx, op)
    return [getattr(ctx.mb, op)(x=ctx.input(0), **kwargs)]


def _register_unary(onnx_op: str, since: int, mil_op: str) -> None:
    def convert(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
        return _unary(ctx, mil_op)

    convert.__name__ = f"{onnx_op.lower()}_v{since}"
    ops.register(onnx_op, since=since)(convert)


for _onnx_op, _since, _mil_op in [
    ("Sqrt", 6, "sqrt"),
    ("Exp", 6, "exp"),
    ("Floor", 6, "floor"),
    ("Ceil", 6, "ceil"),
    ("Sin", 7, "sin"),
    ("Cos", 7, "cos"),
    ("Tan", 7, "tan"),
    ("Asin", 7, "asin"),
    ("Acos", 7, "acos"),
    ("Atan", 7, "atan"),
    ("Sinh", 9, "sinh"),
    ("Cosh", 9, "cosh"),
    ("Atanh", 9, "atanh"),
]:
    _register_unary(_onnx_op, _since, _mil_op)


@ops.register("Log", since=6)
def log_v6(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    # MIL's log adds epsilon (1e-45 by default) first; ONNX adds nothing.
    return _unary(ctx, "log", epsilon=0.0)


@ops.register("Abs", since=6)
def abs_v6(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    return [ctx.mb.abs(x=ctx.input(0))]


@ops.register("Sign", since=9)
def sign_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    return [ctx.mb.sign(x=ctx.input(0))]


@ops.register("Neg", since=6)
def neg_v6(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return [ctx.mb.mul(x=ctx.input(0), y=scalar_like(ctx, -1))]


@ops.register("Reciprocal", since=6)
def reciprocal_v6(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Reciprocal")
    # MIL's inverse adds epsilon (1e-4 by default); a plain division adds nothing.
    return [ctx.mb.real_div(x=scalar_like(ctx, 1.0), y=ctx.input(0))]


@ops.register("Div", since=7)
def div_v7(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    a, b = ctx.input(0), ctx.input(1)
    if is_float(ctx):
        return [ctx.mb.real_div(x=a, y=b)]
    ctx.mil_dtype(ctx.input_dtype(0))
    # ONNX divides integers toward zero, MIL's floor_div toward -inf: add one back where the
    # remainder is not zero and the signs differ.
    mb = ctx.mb
    quotient = mb.floor_div(x=a, y=b)
    remainder = mb.sub(x=a, y=mb.mul(x=quotient, y=b))
    zero = scalar_like(ctx, 0)
    signs_differ = mb.logical_xor(x=mb.less(x=a, y=zero), y=mb.less(x=b, y=zero))
    inexact = mb.logical_and(x=mb.not_equal(x=remainder, y=zero), y=signs_differ)
    return [mb.add(x=quotient, y=mb.cast(x=inexact, dtype="int32"))]


@ops.register("Pow", since=7)
def pow_v7(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    mb = ctx.mb
    exponent = ctx.constant_input(1)
    if (
        is_float(ctx)
        and exponent is not None
        and exponent.size == 1
        and float(exponent.reshape(())) == 2.0
    ):
        return [mb.mul(x=ctx.input(0), y=ctx.input(0))]
    base_word = ctx.mil_dtype(ctx.input_dtype(0))
    exponent_word = ctx.mil_dtype(ctx.input_dtype(1))
    base, power = ctx.input(0), ctx.input(1)
    if base_word == "int32":
        # MIL's pow takes floats: an integer power is computed in float32 and rounded back.
        as_float = [
            v if w != "int32" else mb.cast(x=v, dtype="fp32")
            for v, w in ((base, base_word), (power, exponent_word))
        ]
        if exponent_word == "fp16":
            as_float[1] = mb.cast(x=as_float[1], dtype="fp32")
        raised = mb.pow(x=as_float[0], y=as_float[1])
        return [mb.cast(x=mb.round(x=raised), dtype="int32")]
    if exponent_word != base_word:
        power = mb.cast(x=power, dtype=base_word)
    return [mb.pow(x=base, y=power)]


def _fold(ctx: ExportContext, op: str) -> Any:
    ctx.mil_dtype(ctx.input_dtype(0))
    present = [ctx.input(i) for i in range(len(ctx.node.inputs)) if ctx.has_input(i)]
    return functools.reduce(lambda x, y: getattr(ctx.mb, op)(x=x, y=y), present)


@ops.register("Max", since=8)
def max_v8(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return [_fold(ctx, "maximum") if len(node.inputs) > 1 else ctx.mb.identity(x=ctx.input(0))]


@ops.register("Min", since=8)
def min_v8(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return [_fold(ctx, "minimum") if len(node.inputs) > 1 else ctx.mb.identity(x=ctx.input(0))]


@ops.register("Sum", since=8)
def sum_v8(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return [_fold(ctx, "add") if len(node.inputs) > 1 else ctx.mb.identity(x=ctx.input(0))]


@ops.register("Mean", since=8)
def mean_v8(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Mean")
    total = _fold(ctx, "add") if len(node.inputs) > 1 else ctx.input(0)
    return [ctx.mb.real_div(x=total, y=scalar_like(ctx, float(len(node.inputs))))]


@ops.register("Not", since=1)
def not_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return [ctx.mb.logical_not(x=ctx.input(0))]


def _cond_widens(
    cond: tuple[int | None, ...] | None,
    a: tuple[int | None, ...] | None,
    b: tuple[int | None, ...] | None,
) -> bool:
    """Whether Where's cond broadcasts its output past a's and b's own broadcast shape."""
    if cond is None or a is None or b is None:
        return False
    if len(cond) > max(len(a), len(b)):
        return True
    if any(d is None for d in (*cond, *a, *b)):
        return False
    return bool(np.broadcast_shapes(a, b) != np.broadcast_shapes(cond, a, b))  # type: ignore[arg-type]


@ops.register("Where", since=9)
def where_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(1))
    mb = ctx.mb
    a = ctx.input(1)
    if _cond_widens(*(ctx.input_shape(i) for i in range(3))):
        # coremltools' select takes its output shape from a and b only: a is first broadcast
        # against cond, or a cond larger than both reads back (and runs) at a's shape
        word = ctx.mil_dtype(ctx.input_dtype(1))
        held = "int32" if word == "bool" else word
        zero = np.int32(0) if word == "bool" else scalar_like(ctx, 0, 1).val
        cond_shape = ctx.input_shape(0)
        if cond_shape is not None and None not in cond_shape:
            zeros = ctx.make_constant(np.zeros(cond_shape, zero.dtype))  # type: ignore[arg-type]
        else:  # cond's own shape at run time: cast to a's type, times zero
            zeros = mb.mul(x=mb.cast(x=ctx.input(0), dtype=held), y=zero)
        widened = mb.add(x=a if held == word else mb.cast(x=a, dtype=held), y=zeros)
        a = widened if held == word else mb.cast(x=widened, dtype="bool")
    return [mb.select(cond=ctx.input(0), a=a, b=ctx.input(2))]


@ops.register("Identity", since=1)
def identity_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return [ctx.input(0)]


@ops.register("Cast", since=6)
def cast_v6(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return [_cast(ctx, ir.DataType(int(ctx.attr("to"))))]


@ops.register("CastLike", since=15)
def cast_like_v15(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    target = ctx.input_dtype(1)
    if target is None:
        raise ctx.error("the element type of target_type is unknown")
    return [_cast(ctx, target)]


def _cast(ctx: ExportContext, target: ir.DataType) -> Any:
    source_type = ctx.input_dtype(0)
    source, word = ctx.mil_dtype(source_type), ctx.mil_dtype(target)
    x = ctx.input(0)
    if source != word:
        x = ctx.mb.cast(x=x, dtype=word)
    elif source_type == target:
        return x
    return wrap_integer(ctx, x, target)


@ops.register("Mod", since=10)
def mod_v10(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    mb = ctx.mb
    x, y = ctx.input(0), ctx.input(1)
    fmod = bool(ctx.attr("fmod", 0))
    if is_float(ctx):
        if not fmod:
            return [_floored_mod(ctx, x, y)]
        quotient = mb.real_div(x=x, y=y)
        truncated = mb.mul(x=mb.floor(x=mb.abs(x=quotient)), y=mb.sign(x=quotient))
        return [mb.sub(x=x, y=mb.mul(x=truncated, y=y))]
    ctx.mil_dtype(ctx.input_dtype(0))
    # MIL's mod takes the divisor's sign (fmod=0); fmod=1 takes the dividend's.
    remainder = mb.mod(x=x, y=y)
    if not fmod:
        return [remainder]
    zero = scalar_like(ctx, 0)
    signs_differ = mb.logical_xor(x=mb.less(x=remainder, y=zero), y=mb.less(x=x, y=zero))
    moved = mb.logical_and(x=mb.not_equal(x=remainder, y=zero), y=signs_differ)
    return [mb.select(cond=moved, a=mb.sub(x=remainder, y=y), b=remainder)]


def _floored_mod(ctx: ExportContext, x: Any, y: Any) -> Any:
    """x mod y with the divisor's sign, as Python's % (and onnxruntime's fmod=0 on floats).

    MIL's mod is x - floor(x / y) * y, which is NaN for an infinite divisor (0 * inf); there
    Python's % gives x where x is 0 or has y's sign, else y itself.
    """
    mb = ctx.mb
    remainder = mb.mod(x=x, y=y)
    zero, inf = scalar_like(ctx, 0.0), scalar_like(ctx, np.inf)
    divisor_infinite = mb.equal(x=mb.abs(x=y), y=inf)
    dividend_finite = mb.less(x=mb.abs(x=x), y=inf)
    other_side = mb.logical_and(
        x=mb.not_equal(x=x, y=zero),
        y=mb.logical_xor(x=mb.less(x=x, y=zero), y=mb.less(x=y, y=zero)),
    )
    at_infinity = mb.select(cond=other_side, a=y, b=x)
    return mb.select(
        cond=mb.logical_and(x=divisor_infinite, y=dividend_finite), a=at_infinity, b=remainder
    )


@ops.register("Acosh", since=9)
def acosh_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Acosh")
    return [_log_of_sum_with_root(ctx, -1.0)]


@ops.register("Asinh", since=9)
def asinh_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Asinh")
    return [_log_of_sum_with_root(ctx, 1.0)]


def _log_of_sum_with_root(ctx: ExportContext, shift: float) -> Any:
    """log(x + sqrt(x*x + shift)): MIL has no acosh (shift -1) or asinh (shift 1)."""
    mb, x = ctx.mb, ctx.input(0)
    root = mb.sqrt(x=mb.add(x=mb.mul(x=x, y=x), y=scalar_like(ctx, shift)))
    return mb.log(x=mb.add(x=x, y=root), epsilon=0.0)


@ops.register("IsNaN", since=9)
def is_nan_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "IsNaN")
    return [ctx.mb.not_equal(x=ctx.input(0), y=ctx.input(0))]


@ops.register("IsInf", since=10)
def is_inf_v10(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "IsInf")
    mb, x = ctx.mb, ctx.input(0)
    positive = mb.equal(x=x, y=scalar_like(ctx, np.inf))
    negative = mb.equal(x=x, y=scalar_like(ctx, -np.inf))
    wanted = [
        found
        for found, flag in ((positive, "detect_positive"), (negative, "detect_negative"))
        if int(ctx.attr(flag, 1))
    ]
    if not wanted:
        return [mb.logical_and(x=positive, y=negative)]  # never both: all false
    return [wanted[0] if len(wanted) == 1 else mb.logical_or(x=wanted[0], y=wanted[1])]


@ops.register("BitwiseNot", since=18)
def bitwise_not_v18(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    if ctx.mil_dtype(ctx.input_dtype(0)) != "int32" or is_float(ctx):
        raise ctx.error("BitwiseNot on a non-integer tensor")
    # In two's complement ~x is -1 - x; an unsigned type wraps back into its range.
    inverted = ctx.mb.sub(x=scalar_like(ctx, -1), y=ctx.input(0))
    return [wrap_integer(ctx, inverted, ctx.input_dtype(0))]


@ops.register("BitShift", since=11)
def bit_shift_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    dtype = ctx.input_dtype(0)
    if ctx.mil_dtype(dtype) != "int32" or is_float(ctx):
        raise ctx.error("BitShift on a non-integer tensor")
    mb = ctx.mb
    bits = _BITS.get(dtype, 32) if dtype is not None else 32
    x, shift = ctx.input(0), ctx.input(1)
    # A shift below 0 or of the whole width or more shifts every bit out (onnxruntime: 0 to the
    # left, the sign to the right); the rest shift in two steps of at most 16 bits, each by a
    # power of two exact in float32 and int32 (one step of 31 would not fit int32).
    outside = mb.logical_or(
        x=mb.less(x=shift, y=np.int32(0)), y=mb.greater_equal(x=shift, y=np.int32(bits))
    )
    inside = mb.clip(x=mb.cast(x=shift, dtype="fp32"), alpha=0.0, beta=float(bits - 1))
    first = mb.minimum(x=inside, y=np.float32(16))
    result = x
    for step in (first, mb.sub(x=inside, y=first)):
        factor = mb.cast(x=mb.round(x=mb.exp2(x=step)), dtype="int32")
        if ctx.attr("direction") == "LEFT":
            result = mb.mul(x=result, y=factor)
        else:
            result = mb.floor_div(x=result, y=factor)
    if ctx.attr("direction") == "LEFT":
        shifted_out: Any = np.int32(0)
        result = wrap_integer(ctx, result, dtype)
    else:
        shifted_out = mb.select(cond=mb.less(x=x, y=np.int32(0)), a=np.int32(-1), b=np.int32(0))
    return [mb.select(cond=outside, a=shifted_out, b=result)]


def _clip(ctx: ExportContext, low: Any, high: Any) -> list[Any]:
    x = ctx.input(0)
    if low is not None:
        x = ctx.mb.maximum(x=x, y=low)
    if high is not None:
        x = ctx.mb.minimum(x=x, y=high)
    return [x if x is not ctx.input(0) else ctx.mb.identity(x=x)]


@ops.register("Clip", since=6)
def clip_v6(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Clip")
    low = scalar_like(ctx, float(ctx.attr("min", -np.inf)))
    high = scalar_like(ctx, float(ctx.attr("max", np.inf)))
    return _clip(ctx, low, high)


@ops.register("Clip", since=11)
def clip_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    low = ctx.input(1) if ctx.has_input(1) else None
    high = ctx.input(2) if ctx.has_input(2) else None
    return _clip(ctx, low, high)


@ops.register("Round", since=11)
def round_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _unary(ctx, "round")


#: Bits of each integer type (those held as int32 are computed on their low 32 bits).
_BITS = {
    ir.DataType.INT8: 8,
    ir.DataType.UINT8: 8,
    ir.DataType.INT16: 16,
    ir.DataType.UINT16: 16,
}


def _bitwise(ctx: ExportContext, combine: str) -> list[Any]:
    """MIL has no bitwise ops: the bits are taken one at a time (floor mod and floor division by
    2 read two's complement bits of negative numbers too), combined, and summed back; the top bit
    weighs -2^(bits-1), as in two's complement (unsigned types wrap back at the boundary)."""
    dtype = ctx.input_dtype(0)
    if ctx.mil_dtype(dtype) != "int32" or is_float(ctx):
        raise ctx.error("a bitwise op on a non-integer tensor")
    mb = ctx.mb
    bits = _BITS.get(dtype, 32) if dtype is not None else 32
    x, y = ctx.input(0), ctx.input(1)
    total: Any = None
    for bit in range(bits):
        x_bit, y_bit = mb.mod(x=x, y=np.int32(2)), mb.mod(x=y, y=np.int32(2))
        if bit < bits - 1:
            x, y = mb.floor_div(x=x, y=np.int32(2)), mb.floor_div(x=y, y=np.int32(2))
        if combine == "and":
            both = mb.mul(x=x_bit, y=y_bit)
        elif combine == "or":
            both = mb.maximum(x=x_bit, y=y_bit)
        else:
            both = mb.abs(x=mb.sub(x=x_bit, y=y_bit))
        weight = -(2 ** (bits - 1)) if bit == bits - 1 else 2**bit
        term = mb.mul(x=both, y=np.int32(weight)) if weight != 1 else both
        total = term if total is None else mb.add(x=total, y=term)
    return [wrap_integer(ctx, total, dtype)]


@ops.register("BitwiseAnd", since=18)
def bitwise_and_v18(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _bitwise(ctx, "and")


@ops.register("BitwiseOr", since=18)
def bitwise_or_v18(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _bitwise(ctx, "or")


@ops.register("BitwiseXor", since=18)
def bitwise_xor_v18(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _bitwise(ctx, "xor")
