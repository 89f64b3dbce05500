"""Tables that decode and encode the narrow float formats TFLite has no type for, exactly.

A float8, float4 or E8M0 tensor is carried in TFLite as its uint8 bit patterns. Decoding is one
Gather from a table of every pattern's float32 value. Encoding float32 into a pattern is, for
non-negative inputs, a non-decreasing step function of the input (each rounding rule ONNX
defines: nearest-even for float8/float4 with or without ``saturate``, E8M0's up/down/nearest),
so it is exactly ``table[count(thresholds <= |x|)]``: the thresholds are the smallest float32
at which the pattern changes, found by bisection on onnx's own reference conversion
(``onnx.numpy_helper.saturate_cast``, ml_dtypes' ``astype``, ``to_float8e8m0``). A negative input
takes its pattern from a second table (the sign bit, or none in the FNUZ formats and E8M0), NaN a
fixed pattern. The count is a binary search (Gathers, comparisons, selects: TFLite builtins)
and nothing is rounded on the way, so LiteRT's result is the reference's, ties and overflow
included.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import ml_dtypes
import numpy as np
import onnx_ir as ir

#: The narrow float formats carried as uint8 bit patterns, and their ml_dtypes type.
FLOAT_FORMATS: dict[ir.DataType, type] = {
    ir.DataType.FLOAT8E4M3FN: ml_dtypes.float8_e4m3fn,
    ir.DataType.FLOAT8E4M3FNUZ: ml_dtypes.float8_e4m3fnuz,
    ir.DataType.FLOAT8E5M2: ml_dtypes.float8_e5m2,
    ir.DataType.FLOAT8E5M2FNUZ: ml_dtypes.float8_e5m2fnuz,
    ir.DataType.FLOAT8E8M0: ml_dtypes.float8_e8m0fnu,
    ir.DataType.FLOAT4E2M1: ml_dtypes.float4_e2m1fn,
}
#: Cast's ``saturate`` applies to these (onnx.reference's cast_to).
SATURATING = {
    ir.DataType.FLOAT8E4M3FN,
    ir.DataType.FLOAT8E4M3FNUZ,
    ir.DataType.FLOAT8E5M2,
    ir.DataType.FLOAT8E5M2FNUZ,
}
ROUND_MODES = ("up", "down", "nearest")
#: The largest positive float32 bit pattern that is not NaN (+inf).
_POSITIVE_INFINITY_BITS = 0x7F800000


@dataclass(frozen=True)
class EncodingTable:
    """``code = (negative if x < 0 else positive)[count(thresholds <= |x|)]``, NaN -> ``nan``."""

    thresholds: np.ndarray  # float32, ascending
    positive: np.ndarray  # uint8, one more than thresholds
    negative: np.ndarray  # uint8
    nan: int


def pattern_count(dtype: ir.DataType) -> int:
    return 16 if dtype == ir.DataType.FLOAT4E2M1 else 256


@functools.cache
def decoding_table(dtype: ir.DataType) -> np.ndarray:
    """float32 value of every bit pattern of ``dtype`` (exact: float32 holds them all)."""
    patterns = np.arange(pattern_count(dtype), dtype=np.uint8)
    return patterns.view(FLOAT_FORMATS[dtype]).astype(np.float32)


def reference_encoder(
    dtype: ir.DataType, saturate: bool, round_mode: str
) -> Callable[[np.ndarray], np.ndarray]:
    """onnx's reference Cast of float32 values to ``dtype``, as uint8 bit patterns."""
    from onnx.numpy_helper import saturate_cast, to_float8e8m0

    ml_type = FLOAT_FORMATS[dtype]
    if dtype == ir.DataType.FLOAT8E8M0:
        return lambda x: np.asarray(to_float8e8m0(x, saturate, round_mode)).view(np.uint8)
    if dtype in SATURATING and saturate:
        return lambda x: np.asarray(saturate_cast(x, np.dtype(ml_type))).view(np.uint8)
    return lambda x: np.asarray(x.astype(ml_type)).view(np.uint8)


@functools.cache
def encoding_table(dtype: ir.DataType, saturate: bool, round_mode: str = "up") -> EncodingTable:
    """The thresholds and patterns of ``dtype``'s encoding (see the module's docstring)."""
    encode = reference_encoder(dtype, saturate, round_mode)
    values = decoding_table(dtype).astype(np.float64)

    def level(bits: np.ndarray) -> np.ndarray:
        # The value a non-negative input encodes to, NaN (an overflow) above every number.
        decoded = values[encode(bits.astype(np.uint32).view(np.float32))]
        return np.where(np.isnan(decoded), np.inf, decoded)

    # The smallest non-negative float32 (as bits) reaching each value of the format.
    levels = np.unique(np.concatenate([values[~np.isnan(values)], [np.inf]]))
    low = np.zeros(len(levels), np.int64)
    high = np.full(len(levels), _POSITIVE_INFINITY_BITS + 1, np.int64)
    while np.any(low < high):
        middle = (low + high) // 2
        reached = level(np.minimum(middle, _POSITIVE_INFINITY_BITS)) >= levels
        reached &= middle <= _POSITIVE_INFINITY_BITS
        high = np.where(reached, middle, high)
        low = np.where(reached, low, middle + 1)
    starts = np.unique(low[(low > 0) & (low <= _POSITIVE_INFINITY_BITS)])
    thresholds = starts.astype(np.uint32).view(np.float32)
    representatives = np.concatenate([[np.float32(0.0)], thresholds]).astype(np.float32)
    positive = encode(representatives)
    negative = encode(-representatives)
    nan = int(encode(np.array([np.nan], np.float32))[0])
    return EncodingTable(thresholds, positive.astype(np.uint8), negative.astype(np.uint8), nan)
