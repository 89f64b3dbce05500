"""Elementwise arithmetic, math, comparison and logic; every one keeps its input's layout.

Registered at the version whose semantics they implement (numpy broadcasting since opset 7);
later versions only added element types, which the same TF op takes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    elementwise_inputs,
    for_tflite,
    in_kernel_type,
    in_tflite_type,
    ir,
    np,
    ops,
    wrap,
)


def _unary(ctx: ExportContext, fn: Callable[[Any], Any]) -> Outputs:
    held = ctx.physical(0)
    return [wrap(in_tflite_type(ctx, fn)(held.tensor), held.perm)]


def _binary(ctx: ExportContext, fn: Callable[[Any, Any], Any]) -> Outputs:
    (a, b), perm = elementwise_inputs(ctx, 2)
    return [wrap(in_tflite_type(ctx, fn)(a, b), perm)]


def _variadic(ctx: ExportContext, fn: Callable[[Any, Any], Any]) -> Outputs:
    tensors, perm = elementwise_inputs(ctx)
    result = tensors[0]
    fn = in_tflite_type(ctx, fn)
    for tensor in tensors[1:]:
        result = fn(result, tensor)
    return [wrap(result, perm)]


def _is_integer(tensor: Any) -> bool:
    return bool(tensor.dtype.is_integer)


@ops.register("Add", since=7)
def add_v7(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _binary(ctx, ctx.tf.add)


@ops.register("Sub", since=7)
def sub_v7(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _binary(ctx, ctx.tf.subtract)


@ops.register("Mul", since=7)
def mul_v7(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _binary(ctx, ctx.tf.multiply)


@ops.register("Div", since=7)
def div_v7(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    # Integer Div truncates toward zero in ONNX (C's division); TF's // floors.
    truncate = (
        (lambda a, b: _truncate_div_by_floor(tf, a, b, _tflite_floor_div))
        if for_tflite(ctx)
        else tf.truncatediv
    )
    return _binary(ctx, lambda a, b: truncate(a, b) if _is_integer(a) else tf.math.divide(a, b))


def _truncate_div_by_floor(
    tf: Any, a: Any, b: Any, floor_div: Callable[[Any, Any, Any], Any] | None = None
) -> Any:
    """C's integer division from FloorDiv (TFLite's builtins have no TruncateDiv): the floored
    quotient, one more where a remainder is left and the signs differ."""
    quotient = floor_div(tf, a, b) if floor_div is not None else tf.math.floordiv(a, b)
    if a.dtype.is_unsigned:
        return quotient
    zero = tf.zeros((), a.dtype)
    inexact = tf.not_equal(a - quotient * b, zero)
    signs_differ = tf.not_equal(a < zero, b < zero)
    return quotient + tf.cast(tf.logical_and(inexact, signs_differ), a.dtype)


def _tflite_floor_div(tf: Any, a: Any, b: Any) -> Any:
    """Floored division from TFLite builtins: FLOOR_DIV where it has a kernel (int32, float32);
    for int64, which it lacks, a - floormod(a, b) (FLOOR_MOD holds int64) is an exact multiple
    of b, divided exactly by three float32 estimates of the quotient left, each corrected in
    wrapping int64 arithmetic (the error falls from 2**63 to 2**40, 2**17, then 0: a float32
    holds every integer below 2**24 and rounds the last estimate to it)."""
    if a.dtype != tf.int64:
        return tf.math.floordiv(a, b)
    multiple = a - tf.math.floormod(a, b)
    divisor = tf.cast(b, tf.float32)
    quotient = tf.zeros_like(multiple)
    for _ in range(3):
        left = multiple - quotient * b
        quotient = quotient + tf.cast(tf.round(tf.cast(left, tf.float32) / divisor), tf.int64)
    return quotient


def _tflite_truncate_mod(tf: Any, a: Any, b: Any) -> Any:
    """C's integer remainder from FLOOR_MOD (TFLite's builtins have no TruncateMod): the floored
    remainder has b's sign, the truncated one a's; where they differ and it is not 0, they are
    b apart."""
    floored = tf.math.floormod(a, b)
    zero = tf.zeros((), a.dtype)
    differ = tf.logical_and(tf.not_equal(floored, zero), tf.not_equal(a < zero, b < zero))
    return tf.where(differ, floored - b, floored)


@ops.register("Mod", since=10)
def mod_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    fmod = int(ctx.attr("fmod", 0))

    def remainder(a: Any, b: Any) -> Any:
        # Truncated and floored remainders agree on unsigned types, where floormod has kernels.
        if not fmod or a.dtype.is_unsigned:
            return tf.math.floormod(a, b)
        if for_tflite(ctx) and a.dtype.is_integer:
            return _tflite_truncate_mod(tf, a, b)
        return in_kernel_type(ctx, [a, b], tf.truncatemod, _TRUNCATE_MOD_LACKING)

    return _binary(ctx, remainder)


#: Signed element types TF has no TruncateMod kernel for.
_TRUNCATE_MOD_LACKING = frozenset({"float16", "bfloat16", "int8", "int16"})


@ops.register("Pow", since=7)
def pow_v7(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    # Unsigned powers run in int64, whose wrapped low bits are the unsigned type's.
    return _binary(
        ctx,
        lambda a, b: in_kernel_type(
            ctx, [a, tf.cast(b, a.dtype)], tf.pow, frozenset({"uint8", "uint16", "uint32"})
        ),
    )


@ops.register("Abs", since=6)
def abs_v6(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    return _unary(ctx, lambda x: x if x.dtype.is_unsigned else tf.abs(x))


@ops.register("Sign", since=9)
def sign_v9(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    # TF's Sign has no unsigned kernels: 0 or 1 there.
    return _unary(ctx, lambda x: tf.cast(x > 0, x.dtype) if x.dtype.is_unsigned else tf.sign(x))


@ops.register("Max", since=8)
def max_v8(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _variadic(ctx, ctx.tf.maximum)


@ops.register("Min", since=8)
def min_v8(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _variadic(ctx, ctx.tf.minimum)


@ops.register("Sum", since=8)
def sum_v8(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _variadic(ctx, ctx.tf.add)


@ops.register("Mean", since=8)
def mean_v8(node: ir.Node, ctx: ExportContext) -> Outputs:
    tensors, perm = elementwise_inputs(ctx)
    total = tensors[0]
    for tensor in tensors[1:]:
        total = ctx.tf.add(total, tensor)
    return [wrap(total / ctx.tf.cast(len(tensors), total.dtype), perm)]


_UNARY: dict[str, tuple[int, str]] = {
    "Neg": (6, "negative"),
    "Exp": (6, "exp"),
    "Log": (6, "math.log"),
    "Sqrt": (6, "sqrt"),
    "Reciprocal": (6, "math.reciprocal"),
    "Floor": (6, "floor"),
    "Ceil": (6, "math.ceil"),
    "Sin": (7, "sin"),
    "Cos": (7, "cos"),
    "Tan": (7, "tan"),
    "Asin": (7, "asin"),
    "Acos": (7, "acos"),
    "Atan": (7, "atan"),
    "Sinh": (9, "sinh"),
    "Cosh": (9, "cosh"),
    "Asinh": (9, "asinh"),
    "Acosh": (9, "acosh"),
    "Atanh": (9, "atanh"),
    "Erf": (9, "math.erf"),
    "Round": (11, "round"),  # half to even, as ONNX
    "Not": (1, "logical_not"),
    "IsNaN": (9, "math.is_nan"),
}


def _tf_function(ctx: ExportContext, dotted: str) -> Callable[..., Any]:
    target: Any = ctx.tf
    for part in dotted.split("."):
        target = getattr(target, part)
    return target  # type: ignore[no-any-return]


def _register_unary(op_type: str, since: int, dotted: str) -> None:
    def convert(node: ir.Node, ctx: ExportContext) -> Outputs:
        formula = _TFLITE_FORMULAS.get(op_type) if for_tflite(ctx) else None
        if formula is not None:
            tf = ctx.tf
            return _unary(ctx, lambda x: formula(tf, x))
        return _unary(ctx, _tf_function(ctx, dotted))

    convert.__name__ = convert.__qualname__ = f"{op_type.lower()}_v{since}"
    ops.register(op_type, since=since)(convert)


def _erf(tf: Any, x: Any) -> Any:
    """erf from builtins: its Taylor series near 0 (relative error < 1e-7 below 0.5), Abramowitz
    and Stegun 7.1.26 beyond (absolute error < 1.5e-7), both below float32's tolerance there."""
    square = x * x
    series = (
        x
        * (2.0 / np.sqrt(np.pi))
        * (1.0 + square * (-1.0 / 3 + square * (1.0 / 10 + square * (-1.0 / 42 + square / 216))))
    )
    magnitude = tf.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * magnitude)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    tail = tf.sign(x) * (1.0 - poly * tf.exp(-square))
    return tf.where(magnitude < 0.5, series, tail)


def _one_minus_square_root(tf: Any, x: Any) -> Any:
    return tf.sqrt((1.0 - x) * (1.0 + x))  # sqrt(1 - x^2) without the cancellation at |x| ~ 1


#: Float formulas from TFLite builtins for the TF ops TFLite lacks (used for a TFLite export;
#: float16 inputs run in float32 first).
_TFLITE_FORMULAS: dict[str, Callable[[Any, Any], Any]] = {
    "Tan": lambda tf, x: tf.sin(x) / tf.cos(x),
    "Atan": lambda tf, x: tf.atan2(x, tf.ones_like(x)),
    "Asin": lambda tf, x: tf.atan2(x, _one_minus_square_root(tf, x)),
    "Acos": lambda tf, x: tf.atan2(_one_minus_square_root(tf, x), x),
    "Sinh": lambda tf, x: (tf.exp(x) - tf.exp(-x)) * 0.5,
    "Cosh": lambda tf, x: (tf.exp(x) + tf.exp(-x)) * 0.5,
    "Asinh": lambda tf, x: tf.sign(x) * tf.math.log(tf.abs(x) + tf.sqrt(x * x + 1.0)),
    "Acosh": lambda tf, x: tf.math.log(x + tf.sqrt((x - 1.0) * (x + 1.0))),
    "Atanh": lambda tf, x: 0.5 * tf.math.log((1.0 + x) / (1.0 - x)),
    "Erf": _erf,
}

for _op, (_since, _dotted) in _UNARY.items():
    _register_unary(_op, _since, _dotted)

_BINARY: dict[str, tuple[int, str]] = {
    "Equal": (7, "equal"),
    "Less": (7, "less"),
    "Greater": (7, "greater"),
    "LessOrEqual": (12, "less_equal"),
    "GreaterOrEqual": (12, "greater_equal"),
    "And": (7, "logical_and"),
    "Or": (7, "logical_or"),
    "Xor": (7, "math.logical_xor"),
    "BitwiseAnd": (18, "bitwise.bitwise_and"),
    "BitwiseOr": (18, "bitwise.bitwise_or"),
    "BitwiseXor": (18, "bitwise.bitwise_xor"),
}


def _register_binary(op_type: str, since: int, dotted: str) -> None:
    def convert(node: ir.Node, ctx: ExportContext) -> Outputs:
        formula = _TFLITE_BITWISE.get(op_type) if for_tflite(ctx) else None
        if formula is not None:
            tf = ctx.tf
            (a, b), perm = elementwise_inputs(ctx, 2)
            return [wrap(formula(tf, a, b), perm)]
        return _binary(ctx, _tf_function(ctx, dotted))

    convert.__name__ = convert.__qualname__ = f"{op_type.lower()}_v{since}"
    ops.register(op_type, since=since)(convert)


for _op, (_since, _dotted) in _BINARY.items():
    _register_binary(_op, _since, _dotted)


@ops.register("BitwiseNot", since=18)
def bitwise_not_v18(node: ir.Node, ctx: ExportContext) -> Outputs:
    if for_tflite(ctx):
        tf = ctx.tf
        held = ctx.physical(0)
        return [wrap(_tflite_bitwise_not(tf, held.tensor), held.perm)]
    return _unary(ctx, ctx.tf.bitwise.invert)


# -- bitwise ops from TFLite builtins ------------------------------------------------------------
# TFLite's builtins have BITWISE_XOR and RIGHT_SHIFT (8 to 32 bits), wrapping int32/int64 ADD,
# SUB and MUL, CAST that keeps low bits and BITCAST; the rest is exact arithmetic on those.

#: Types computed in int32 (widened by sign or zero extension, whose bitwise results are the
#: extension of the narrow results; the cast back keeps the low bits).
_NARROW = frozenset({"int8", "int16", "uint8", "uint16"})


def _as_int32(tf: Any, x: Any) -> Any:
    if x.dtype.name in _NARROW:
        return tf.cast(x, tf.int32)
    if x.dtype == tf.uint32:
        return tf.bitcast(x, tf.int32)  # the same 32 bits: wrapping arithmetic agrees
    return x


def _from_int32(tf: Any, x: Any, dtype: Any) -> Any:
    if dtype == tf.uint32:
        return tf.bitcast(x, tf.uint32)
    return tf.cast(x, dtype) if dtype != x.dtype else x


def _in_int32(tf: Any, fn: Callable[..., Any], *tensors: Any) -> Any:
    dtype = tensors[0].dtype
    return _from_int32(tf, fn(*(_as_int32(tf, t) for t in tensors)), dtype)


def _and_int32(tf: Any, a: Any, b: Any) -> Any:
    """a & b of int32s: a + b = (a ^ b) + 2 (a & b), so (a + b) - (a ^ b) wraps to (a & b) << 1;
    its arithmetic shift right holds every bit but the top one, which is set where a and b are
    both negative (flipped by an XOR where the shift copied the wrong one)."""
    halved = tf.bitwise.right_shift(a + b - tf.bitwise.bitwise_xor(a, b), 1)
    top = tf.constant(np.iinfo(np.int32).min, tf.int32)
    zero = tf.zeros((), tf.int32)
    wanted = tf.logical_and(a < zero, b < zero)
    return tf.where(
        tf.not_equal(halved < zero, wanted), tf.bitwise.bitwise_xor(halved, top), halved
    )


def _or_int32(tf: Any, a: Any, b: Any) -> Any:
    # a ^ b and a & b have no bit in common: their sum carries nothing.
    return tf.bitwise.bitwise_xor(a, b) + _and_int32(tf, a, b)


def _tflite_bitwise_not(tf: Any, x: Any) -> Any:
    if x.dtype == tf.int64:
        return -x - 1  # two's complement, wrapping as int64 does
    ones = np.iinfo(x.dtype.as_numpy_dtype).max if x.dtype.is_unsigned else -1
    return tf.bitwise.bitwise_xor(x, tf.constant(ones, x.dtype))


def _bitwise_formula(
    formula: Callable[[Any, Any, Any], Any], refused: Callable[[Any], Any]
) -> Callable[[Any, Any, Any], Any]:
    """``formula`` in int32 for 8 to 32 bits; TF's own op (``refused(tf)``) for 64 bits, which
    TFLiteConverter then refuses by name."""

    def apply(tf: Any, a: Any, b: Any) -> Any:
        if a.dtype.size > 4:
            return refused(tf)(a, b)
        return _in_int32(tf, lambda x, y: formula(tf, x, y), a, b)

    return apply


_TFLITE_BITWISE: dict[str, Callable[[Any, Any, Any], Any]] = {
    "BitwiseAnd": _bitwise_formula(_and_int32, lambda tf: tf.bitwise.bitwise_and),
    "BitwiseOr": _bitwise_formula(_or_int32, lambda tf: tf.bitwise.bitwise_or),
    "BitwiseXor": _bitwise_formula(
        lambda tf, a, b: tf.bitwise.bitwise_xor(a, b), lambda tf: tf.bitwise.bitwise_xor
    ),
}


@ops.register("IsInf", since=10)
def is_inf_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    positive = bool(ctx.attr("detect_positive", 1))
    negative = bool(ctx.attr("detect_negative", 1))

    def detect(x: Any) -> Any:
        if for_tflite(ctx):
            # LiteRT answers IsInf and comparisons with an infinite constant wrongly; beyond the
            # largest finite value is the same test.
            largest = tf.constant(float(np.finfo(x.dtype.as_numpy_dtype).max), x.dtype)
            if positive and negative:
                return tf.greater(tf.abs(x), largest)
            if positive or negative:
                return tf.greater(x, largest) if positive else tf.less(x, -largest)
        if positive and negative:
            return tf.math.is_inf(x)
        if positive:
            return tf.equal(x, tf.constant(float("inf"), x.dtype))
        if negative:
            return tf.equal(x, tf.constant(float("-inf"), x.dtype))
        return tf.zeros_like(x, dtype=tf.bool)

    return _unary(ctx, detect)


@ops.register("Where", since=9)
def where_v9(node: ir.Node, ctx: ExportContext) -> Outputs:
    (condition, x, y), perm = elementwise_inputs(ctx, 3)
    return [wrap(ctx.tf.where(condition, x, y), perm)]


@ops.register("Clip", since=6)
def clip_v6(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    held = ctx.physical(0)
    low = float(ctx.attr("min", float(np.finfo(np.float32).min)))
    high = float(ctx.attr("max", float(np.finfo(np.float32).max)))
    result = in_tflite_type(ctx, tf.maximum)(held.tensor, tf.cast(low, held.tensor.dtype))
    result = in_tflite_type(ctx, tf.minimum)(result, tf.cast(high, held.tensor.dtype))
    return [wrap(result, held.perm)]


@ops.register("Clip", since=11)
def clip_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    held = ctx.physical(0)
    result = held.tensor
    if ctx.has_input(1):
        result = in_tflite_type(ctx, tf.maximum)(result, tf.cast(ctx.input(1), result.dtype))
    if ctx.has_input(2):
        result = in_tflite_type(ctx, tf.minimum)(result, tf.cast(ctx.input(2), result.dtype))
    return [wrap(result, held.perm)]


@ops.register("Identity", since=1)
def identity_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    return [ctx.physical(0)]


def _dropout_identity(node: ir.Node, ctx: ExportContext) -> Outputs:
    """Dropout that keeps everything: the input, and an all-true mask where one is read."""
    held = ctx.physical(0)
    mask = None
    graph_outputs = node.graph.outputs if node.graph is not None else []
    if len(node.outputs) > 1 and (
        node.outputs[1].uses() or any(node.outputs[1] is o for o in graph_outputs)
    ):
        mask = wrap(ctx.tf.ones_like(held.tensor, dtype=ctx.tf.bool), held.perm)
    return [held, mask]


@ops.register("Dropout", since=7)
def dropout_v7(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _dropout_identity(node, ctx)  # no training mode before opset 12


@ops.register("Dropout", since=12)
def dropout_v12(node: ir.Node, ctx: ExportContext) -> Outputs:
    training = ctx.constant_input(2) if ctx.has_input(2) else None
    if not ctx.has_input(2) or (training is not None and not bool(training.reshape(()))):
        return _dropout_identity(node, ctx)
    # Training mode: a random mask (TF's generator, so not onnx's numpy draws), kept values
    # scaled by 1 / (1 - ratio); a ratio of 0 keeps everything exactly.
    tf = ctx.tf
    x = ctx.input(0)
    ratio = tf.cast(tf.reshape(ctx.input(1), []), tf.float32) if ctx.has_input(1) else 0.5
    on = tf.cast(tf.reshape(ctx.input(2), []), tf.bool)
    keep = tf.logical_or(tf.logical_not(on), tf.random.uniform(tf.shape(x)) >= ratio)
    scale = tf.where(on, 1.0 / (1.0 - ratio), 1.0)
    y = tf.where(keep, x * tf.cast(scale, x.dtype), tf.zeros_like(x))
    return [y, keep if len(node.outputs) > 1 else None]


@ops.register("BitShift", since=11)
def bit_shift_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    direction = ctx.attr("direction")
    right = (direction.decode() if isinstance(direction, bytes) else direction) == "RIGHT"

    if for_tflite(ctx):
        (x, y), perm = elementwise_inputs(ctx, 2)
        return [wrap(_tflite_shift(ctx.tf, x, y, right), perm)]

    def shift(x: Any, y: Any) -> Any:
        bits = x.dtype.size * 8
        shifted = (tf.bitwise.right_shift if right else tf.bitwise.left_shift)(x, y)
        # TF leaves shifts out of [0, bits) undefined; ONNX fills with the sign bit alone.
        zero = tf.zeros((), x.dtype)
        fill = tf.where(x < zero, ~zero, zero) if right and not x.dtype.is_unsigned else zero
        out_of_range = (y < zero) | (y >= tf.cast(bits, x.dtype))
        return tf.where(out_of_range, tf.broadcast_to(fill, tf.shape(shifted)), shifted)

    return _binary(ctx, shift)


def _tflite_shift(tf: Any, x: Any, y: Any, right: bool) -> Any:
    """ONNX's BitShift from TFLite builtins, computed in int32 for 8 to 32 bits (sign or zero
    extension commutes with both shifts; uint32 is bitcast, but shifted right as itself) and in
    int64 for int64: RIGHT_SHIFT; a left shift as the wrapping product with 2**y (a table
    gathered at y); ONNX's fill where y is outside [0, bits)."""
    dtype = x.dtype
    bits = dtype.size * 8
    if dtype == tf.uint64:
        # No builtin holds it: TFLiteConverter's refusal names the TF op.
        return (tf.bitwise.right_shift if right else tf.bitwise.left_shift)(x, y)
    held = tf.int64 if dtype == tf.int64 else tf.int32
    # int64 holds every shift amount of every type, so the range test is exact.
    wide_y = tf.cast(y, tf.int64)
    out_of_range = tf.logical_or(wide_y < 0, wide_y >= bits)
    amount = tf.cast(tf.clip_by_value(wide_y, 0, bits - 1), held)
    value = _as_int32(tf, x) if held == tf.int32 else x
    zero = tf.zeros((), held)
    if right and dtype == tf.uint32:
        shifted = tf.bitcast(tf.bitwise.right_shift(x, tf.cast(amount, tf.uint32)), tf.int32)
        fill = zero
    elif right:
        fill = tf.where(value < zero, tf.constant(-1, held), zero)
        if held == tf.int64:
            # RIGHT_SHIFT has no int64: the floored quotient by 2**y, exact (_tflite_floor_div);
            # 2**63 is no int64, and a shift by 63 leaves the sign's fill alone.
            table = np.left_shift(np.ones(bits - 1, np.int64), np.arange(bits - 1, dtype=np.int64))
            power = tf.gather(tf.constant(np.append(table, 1)), amount)
            quotient = _tflite_floor_div(tf, value, power)
            shifted = tf.where(tf.equal(amount, bits - 1), fill, quotient)
        else:
            shifted = tf.bitwise.right_shift(value, amount)
    else:
        table = np.left_shift(np.ones(bits, np.uint64), np.arange(bits, dtype=np.uint64))
        powers = (
            table.view(np.int64) if held == tf.int64 else table.astype(np.uint32).view(np.int32)
        )
        shifted = tf.gather(tf.constant(powers), amount) * value
        fill = zero
    result = tf.where(out_of_range, tf.broadcast_to(fill, tf.shape(shifted)), shifted)
    return _from_int32(tf, result, dtype) if held == tf.int32 else result


@ops.register("Shrink", since=9)
def shrink_v9(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    bias = float(ctx.attr("bias", 0.0))
    lambd = float(ctx.attr("lambd", 0.5))

    def shrink(x: Any) -> Any:
        # float64 holds every value of every input type Shrink takes (integers included); a
        # float32 sum with a float32 bias is rounded as the float64 one cast back is, which
        # is what a TFLite export (no float64 kernels) computes floats in.
        wide = tf.float32 if for_tflite(ctx) and x.dtype == tf.float32 else tf.float64
        low = tf.cast(x, wide)
        result = tf.where(low < -lambd, low + bias, tf.where(low > lambd, low - bias, 0.0))
        return tf.cast(result, x.dtype)

    return _unary(ctx, shrink)


@ops.register("Binarizer", since=1, domain="ai.onnx.ml")
def binarizer_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    threshold = float(ctx.attr("threshold", 0.0))
    return _unary(ctx, lambda x: tf.cast(x > tf.cast(threshold, x.dtype), x.dtype))


@ops.register("Det", since=11)
def det_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    if for_tflite(ctx):
        return [_tflite_det(ctx, ctx.input(0))]
    return [in_kernel_type(ctx, [ctx.input(0)], tf.linalg.det, frozenset({"float16", "bfloat16"}))]


def _tflite_det(ctx: ExportContext, x: Any) -> Any:
    """The determinant of 1x1, 2x2 and 3x3 matrices by its cofactor expansion (TFLite has no
    MatrixDeterminant); a larger or unknown size is left to TF's op, which TFLite refuses."""
    tf = ctx.tf
    shape = x.shape.as_list() if x.shape.rank is not None else []
    size = shape[-1] if len(shape) >= 2 and shape[-1] == shape[-2] else None
    if size not in (1, 2, 3):
        # TF's own op: TFLiteConverter refuses it by name (a Flex op, allowed by --select-tf-ops).
        return in_kernel_type(ctx, [x], tf.linalg.det, frozenset({"float16", "bfloat16"}))

    def at(i: int, j: int) -> Any:
        return x[..., i, j]

    if size == 1:
        return at(0, 0)
    if size == 2:
        return at(0, 0) * at(1, 1) - at(0, 1) * at(1, 0)
    return (
        at(0, 0) * (at(1, 1) * at(2, 2) - at(1, 2) * at(2, 1))
        - at(0, 1) * (at(1, 0) * at(2, 2) - at(1, 2) * at(2, 0))
        + at(0, 2) * (at(1, 0) * at(2, 1) - at(1, 1) * at(2, 0))
    )


@ops.register("Einsum", since=12)
def einsum_v12(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    equation = ctx.attr("equation")
    equation = (equation.decode() if isinstance(equation, bytes) else equation).replace(" ", "")
    tensors = [ctx.input(i) for i in range(len(node.inputs))]
    return [in_kernel_type(ctx, tensors, lambda *t: tf.einsum(equation, *t), _EINSUM_LACKING)]


#: Element types TF's Einsum has no kernel for: contracted in float32 (rounded back) or int64
#: (whose low bits are the narrow type's wrapped sums and products).
_EINSUM_LACKING = frozenset({"bfloat16", "int8", "int16", "uint8", "uint16", "uint32"})
