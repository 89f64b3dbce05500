"""Element-wise math: unary functions, Pow, Mod, variadic Max/Min/Sum/Mean, Clip, IsNaN/IsInf,
bitwise ops and shifts, BitCast, Shrink, Det and ``ai.onnx.ml`` Binarizer.

torch's CPU kernels lack most arithmetic on uint16/uint32/uint64. Those run on int64 here: uint16
and uint32 by value, uint64 by bit reinterpretation (with the sign bit flipped where order
matters), and the result goes back to the ONNX type. Integer Mod on uint64 values of 2**63 and
above is the one case this does not cover.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any, cast

from unframe.backends.pytorch.dtypes import maybe_torch_dtype
from unframe.backends.pytorch.ops._common import BuildContext, Outputs, fx, ir, ops, torch

_UNSIGNED_WIDE = (torch.uint16, torch.uint32, torch.uint64)
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
#: Longest int vector tracked element-wise (shape vectors are short; tables are not).
_MAX_ELEMENTS = 64
_FLOAT8 = (
    torch.float8_e4m3fn,
    torch.float8_e4m3fnuz,
    torch.float8_e5m2,
    torch.float8_e5m2fnuz,
)


# -- unsigned helpers ------------------------------------------------------------------------------
def _wide(x: torch.Tensor) -> torch.Tensor:
    """An int64 image of an integer tensor: the same value, or the same bits for uint64."""
    if x.dtype == torch.uint64:
        return x.view(torch.int64)
    return x if x.dtype == torch.int64 else x.to(torch.int64)


def _narrow(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The inverse of ``_wide`` (wrapping modulo the width of ``dtype``)."""
    if dtype == torch.uint64:
        return x.view(torch.uint64)
    return x if x.dtype == dtype else x.to(dtype)


def _ordered(x: torch.Tensor) -> torch.Tensor:
    """An int64 image of an unsigned tensor that keeps its order (uint64: sign bit flipped)."""
    if x.dtype == torch.uint64:
        return torch.bitwise_xor(x.view(torch.int64), _INT64_MIN)
    return x.to(torch.int64)


def _unordered(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if dtype == torch.uint64:
        return torch.bitwise_xor(x, _INT64_MIN).view(torch.uint64)
    return x.to(dtype)


# -- shape vectors --------------------------------------------------------------------------------
def _propagate_elements(
    ctx: BuildContext, out: fx.Node, symbolic: Callable[..., Any], inputs: list[int]
) -> None:
    """Records ``out`` element-wise when its inputs are shape vectors (see ``ctx.shape_elements``).

    ``symbolic`` combines one element of each input (ints, or fx nodes yielding sizes), so that a
    ``Max(shape, 1)`` feeding a Reshape stays symbolic under ``torch.export``.
    """
    lists = [ctx.shape_elements(i) for i in inputs]
    if any(e is None for e in lists) or all(ctx.constant_input(i) is not None for i in inputs):
        return
    vectors = [e for e in lists if e is not None]
    size = max(len(e) for e in vectors)
    if size > _MAX_ELEMENTS or any(len(e) not in (1, size) for e in vectors):
        return
    columns = zip(*(e * size if len(e) == 1 else e for e in vectors), strict=True)
    elements: list[int | fx.Node] = []
    for column in columns:
        if not all(isinstance(v, int) for v in column):
            elements.append(ctx.call(symbolic, *column))
            continue
        try:
            elements.append(int(symbolic(*column)))
        except ArithmeticError:  # e.g. a size modulo 0: leave it to the tensor path
            return
    ctx.set_shape_elements(out, elements)


def _sym_max(*values: Any) -> Any:
    return functools.reduce(torch.sym_max, values)


def _sym_min(*values: Any) -> Any:
    return functools.reduce(torch.sym_min, values)


def _sym_sum(*values: Any) -> Any:
    return functools.reduce(operator.add, values)


# -- unary -----------------------------------------------------------------------------------------
def _abs(x: torch.Tensor) -> torch.Tensor:
    if x.dtype in _UNSIGNED_WIDE or x.dtype == torch.uint8:
        return x
    return torch.abs(x)


def _sign(x: torch.Tensor) -> torch.Tensor:
    if x.dtype in _UNSIGNED_WIDE:
        return (x != 0).to(x.dtype)
    return torch.sign(x)


@ops.register("Abs", since=6)
def abs_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_abs, ctx.input(0))]


@ops.register("Neg", since=6)
def neg_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    out = ctx.call(torch.neg, ctx.input(0))
    _propagate_elements(ctx, out, operator.neg, [0])
    return [out]


@ops.register("Reciprocal", since=6)
def reciprocal_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.reciprocal, ctx.input(0))]


@ops.register("Exp", since=6)
def exp_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.exp, ctx.input(0))]


@ops.register("Log", since=6)
def log_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.log, ctx.input(0))]


@ops.register("Sqrt", since=6)
def sqrt_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.sqrt, ctx.input(0))]


@ops.register("Floor", since=6)
def floor_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.floor, ctx.input(0))]


@ops.register("Ceil", since=6)
def ceil_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.ceil, ctx.input(0))]


@ops.register("Round", since=11)
def round_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    # torch.round rounds halves to even, as ONNX does.
    return [ctx.call(torch.round, ctx.input(0))]


@ops.register("Sign", since=9)
def sign_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_sign, ctx.input(0))]


@ops.register("Erf", since=9)
def erf_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.erf, ctx.input(0))]


@ops.register("Sin", since=7)
def sin_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.sin, ctx.input(0))]


@ops.register("Cos", since=7)
def cos_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.cos, ctx.input(0))]


@ops.register("Tan", since=7)
def tan_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.tan, ctx.input(0))]


@ops.register("Asin", since=7)
def asin_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.asin, ctx.input(0))]


@ops.register("Acos", since=7)
def acos_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.acos, ctx.input(0))]


@ops.register("Atan", since=7)
def atan_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.atan, ctx.input(0))]


@ops.register("Sinh", since=9)
def sinh_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.sinh, ctx.input(0))]


@ops.register("Cosh", since=9)
def cosh_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.cosh, ctx.input(0))]


@ops.register("Asinh", since=9)
def asinh_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.asinh, ctx.input(0))]


@ops.register("Acosh", since=9)
def acosh_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.acosh, ctx.input(0))]


@ops.register("Atanh", since=9)
def atanh_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.atanh, ctx.input(0))]


def _is_nan(x: torch.Tensor) -> torch.Tensor:
    return torch.isnan(x.float() if x.dtype in _FLOAT8 else x)


def _is_inf(x: torch.Tensor, negative: bool, positive: bool) -> torch.Tensor:
    x = x.float() if x.dtype in _FLOAT8 else x
    if negative and positive:
        return torch.isinf(x)
    if positive:
        return torch.isposinf(x)
    if negative:
        return torch.isneginf(x)
    return torch.zeros(x.shape, dtype=torch.bool)


@ops.register("IsNaN", since=9)
def is_nan_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_is_nan, ctx.input(0))]


@ops.register("IsInf", since=10)
def is_inf_v10(node: ir.Node, ctx: BuildContext) -> Outputs:
    negative = bool(ctx.attr_int("detect_negative", 1))
    positive = bool(ctx.attr_int("detect_positive", 1))
    return [ctx.call(_is_inf, ctx.input(0), negative, positive)]


# -- Pow, Mod ---------------------------------------------------------------------------------------
def _pow(base: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """``base ** exponent`` in the type of ``base`` (ONNX's T; the exponent's T1 may differ)."""
    dtype = base.dtype
    if dtype.is_floating_point:
        return torch.pow(base, exponent).to(dtype)
    if exponent.is_floating_point():
        # Integer base, float exponent: computed in double then truncated, as numpy does.
        return torch.pow(base.double(), exponent.double()).to(dtype)
    result = torch.pow(_wide(base), _wide(exponent))
    return _narrow(result, dtype)


@ops.register("Pow", since=7)
def pow_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_pow, ctx.input(0), ctx.input(1))]


def _float_mod(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Python's ``a % b`` on floats: the sign of ``b``, special cases as ONNX's Mod lists them."""
    remainder = torch.fmod(a, b)
    fix = (remainder != 0) & ((remainder < 0) != (b < 0))
    remainder = torch.where(fix, remainder + b, remainder)
    return torch.where(remainder == 0, torch.copysign(remainder, b), remainder)


def _mod(a: torch.Tensor, b: torch.Tensor, fmod: bool) -> torch.Tensor:
    dtype = a.dtype
    if dtype.is_floating_point:
        return torch.fmod(a, b) if fmod else _float_mod(a, b)
    if dtype in _UNSIGNED_WIDE:
        wide_a, wide_b = a.to(torch.int64), b.to(torch.int64)
        return torch.remainder(wide_a, wide_b).to(dtype)
    return torch.fmod(a, b) if fmod else torch.remainder(a, b)


@ops.register("Mod", since=10)
def mod_v10(node: ir.Node, ctx: BuildContext) -> Outputs:
    fmod = ctx.attr_int("fmod", 0)
    if fmod not in (0, 1):
        raise ctx.error(f"Mod: fmod must be 0 or 1, got {fmod}")
    out = ctx.call(_mod, ctx.input(0), ctx.input(1), bool(fmod))
    if not fmod:  # Python's % on sizes is ONNX's fmod=0
        _propagate_elements(ctx, out, operator.mod, [0, 1])
    return [out]


# -- variadic ---------------------------------------------------------------------------------------
def _maximum(*tensors: torch.Tensor) -> torch.Tensor:
    dtype = tensors[0].dtype
    if dtype in _UNSIGNED_WIDE:
        return _unordered(functools.reduce(torch.maximum, map(_ordered, tensors)), dtype)
    return functools.reduce(torch.maximum, tensors)


def _minimum(*tensors: torch.Tensor) -> torch.Tensor:
    dtype = tensors[0].dtype
    if dtype in _UNSIGNED_WIDE:
        return _unordered(functools.reduce(torch.minimum, map(_ordered, tensors)), dtype)
    return functools.reduce(torch.minimum, tensors)


def _sum(*tensors: torch.Tensor) -> torch.Tensor:
    dtype = tensors[0].dtype
    if dtype in _UNSIGNED_WIDE:
        return _narrow(functools.reduce(torch.add, map(_wide, tensors)), dtype)
    return functools.reduce(torch.add, tensors)


def _mean(*tensors: torch.Tensor) -> torch.Tensor:
    return _sum(*tensors) / len(tensors)


def _variadic(
    ctx: BuildContext,
    function: Callable[..., torch.Tensor],
    symbolic: Callable[..., Any] | None = None,
) -> Outputs:
    present = [i for i in range(ctx.num_inputs) if ctx.has_input(i)]
    if not present:
        raise ctx.error(f"{ctx.node.op_type} needs at least one input")
    if len(present) == 1:
        return [ctx.input(present[0])]
    out = ctx.call(function, *(ctx.input(i) for i in present))
    if symbolic is not None:
        _propagate_elements(ctx, out, symbolic, present)
    return [out]


@ops.register("Max", since=6)
def max_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _variadic(ctx, _maximum, _sym_max)


@ops.register("Min", since=6)
def min_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _variadic(ctx, _minimum, _sym_min)


@ops.register("Sum", since=6)
def sum_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _variadic(ctx, _sum, _sym_sum)


@ops.register("Mean", since=6)
def mean_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _variadic(ctx, _mean)


# -- Clip -------------------------------------------------------------------------------------------
def _clip(
    x: torch.Tensor,
    low: torch.Tensor | float | None,
    high: torch.Tensor | float | None,
) -> torch.Tensor:
    if low is None and high is None:
        return x
    dtype = x.dtype
    if dtype in _UNSIGNED_WIDE:
        wide_low = None if low is None else _ordered(torch.as_tensor(low, dtype=dtype))
        wide_high = None if high is None else _ordered(torch.as_tensor(high, dtype=dtype))
        return _unordered(torch.clamp(_ordered(x), wide_low, wide_high), dtype)
    # min > max gives max everywhere, in torch as in ONNX. torch's stubs type the bounds as numbers
    # or as tensors, never their union, which these are.
    return torch.clamp(x, cast(Any, low), cast(Any, high))


@ops.register("Clip", since=6)
def clip_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    low = ctx.attr_float("min", -3.4028234663852886e38)
    high = ctx.attr_float("max", 3.4028234663852886e38)
    return [ctx.call(_clip, ctx.input(0), low, high)]


@ops.register("Clip", since=11)
def clip_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_clip, ctx.input(0), ctx.optional_input(1), ctx.optional_input(2))]


# -- bitwise ----------------------------------------------------------------------------------------
def _bit_width(dtype: torch.dtype) -> int:
    return torch.iinfo(dtype).bits


def _bit_shift(x: torch.Tensor, shift: torch.Tensor, left: bool) -> torch.Tensor:
    """ONNX BitShift (opset 28 rules, a superset of opset 11's): computed on the int64 image.

    A shift amount below 0 or at least the width gives 0, or -1 for a right shift of a negative
    signed value. Right shifts of signed types are arithmetic, of unsigned types logical.
    """
    dtype = x.dtype
    bits = _bit_width(dtype)
    value = _wide(x)
    amount = _wide(shift)
    valid = (amount >= 0) & (amount < bits)
    amount = torch.where(valid, amount, 0)
    zero = torch.zeros((), dtype=torch.int64)
    if left:
        result = torch.where(valid, torch.bitwise_left_shift(value, amount), zero)
        return _narrow(result, dtype)
    if dtype == torch.uint64:
        # Logical shift of the int64 image: one bit with the sign cleared, then the rest.
        rest = torch.clamp(amount - 1, min=0)
        logical = torch.bitwise_right_shift(
            torch.bitwise_and(torch.bitwise_right_shift(value, 1), _INT64_MAX), rest
        )
        shifted = torch.where(amount == 0, value, logical)
    else:
        shifted = torch.bitwise_right_shift(value, amount)
    fill = torch.where(value < 0, -1, 0) if dtype.is_signed else zero
    return _narrow(torch.where(valid, shifted, fill), dtype)


@ops.register("BitShift", since=11)
def bit_shift_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    direction = ctx.attr_str("direction", "")
    if direction not in ("LEFT", "RIGHT"):
        raise ctx.error(f"BitShift: direction must be LEFT or RIGHT, got {direction!r}")
    return [ctx.call(_bit_shift, ctx.input(0), ctx.input(1), direction == "LEFT")]


def _bitwise_not(x: torch.Tensor) -> torch.Tensor:
    if x.dtype in _UNSIGNED_WIDE:
        return _narrow(torch.bitwise_not(_wide(x)), x.dtype)
    return torch.bitwise_not(x)


def _bitwise(function: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    dtype = a.dtype
    kernel = getattr(torch, function)
    if dtype in _UNSIGNED_WIDE:
        return _narrow(kernel(_wide(a), _wide(b)), dtype)
    return kernel(a, b)


@ops.register("BitwiseNot", since=18)
def bitwise_not_v18(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_bitwise_not, ctx.input(0))]


@ops.register("BitwiseAnd", since=18)
def bitwise_and_v18(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_bitwise, "bitwise_and", ctx.input(0), ctx.input(1))]


@ops.register("BitwiseOr", since=18)
def bitwise_or_v18(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_bitwise, "bitwise_or", ctx.input(0), ctx.input(1))]


@ops.register("BitwiseXor", since=18)
def bitwise_xor_v18(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_bitwise, "bitwise_xor", ctx.input(0), ctx.input(1))]


def _bit_cast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return x.view(dtype)


@ops.register("BitCast", since=26)
def bit_cast_v26(node: ir.Node, ctx: BuildContext) -> Outputs:
    to = ctx.attr_int("to")
    dtype = maybe_torch_dtype(to)
    if dtype is None:
        raise ctx.error(f"BitCast: torch has no dtype for {ir.DataType(to).name}")
    source = ctx.input_dtype(0)
    if source is not None and source.itemsize != dtype.itemsize:
        raise ctx.error(f"BitCast: {source} and {dtype} differ in width")
    return [ctx.call(_bit_cast, ctx.input(0), dtype)]


# -- Shrink, Det ------------------------------------------------------------------------------------
def _shrink(x: torch.Tensor, lambd: float, bias: float) -> torch.Tensor:
    dtype = x.dtype
    value = x.to(torch.int64) if dtype in _UNSIGNED_WIDE else x
    zero = torch.zeros((), dtype=value.dtype)
    result = torch.where(
        value < -lambd, value + bias, torch.where(value > lambd, value - bias, zero)
    )
    return result.to(dtype)


@ops.register("Shrink", since=9)
def shrink_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    lambd, bias = ctx.attr_float("lambd", 0.5), ctx.attr_float("bias", 0.0)
    return [ctx.call(_shrink, ctx.input(0), lambd, bias)]


def _det(x: torch.Tensor) -> torch.Tensor:
    if x.dtype in (torch.float16, torch.bfloat16):
        return torch.linalg.det(x.float()).to(x.dtype)
    return torch.linalg.det(x)


@ops.register("Det", since=11)
def det_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_det, ctx.input(0))]


def _binarize(x: torch.Tensor, threshold: float) -> torch.Tensor:
    return (x > threshold).to(x.dtype)


@ops.register("Binarizer", since=1, domain="ai.onnx.ml")
def binarizer_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_binarize, ctx.input(0), ctx.attr_float("threshold", 0.0))]
