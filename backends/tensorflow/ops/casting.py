"""Cast, CastLike and BitCast, including the element types TensorFlow holds but cannot compute on.

TensorFlow has the dtypes int4, uint4, int2, uint2, float8_e4m3fnuz, float8_e5m2fnuz and
float4_e2m1fn, but no Cast kernel for them (not even Bitcast). A tensor of one of them is decoded
exactly through ``Fingerprint`` (a kernel that reads any tensor's bytes): each element's hash is
looked up in a table of the hashes of every value the type holds. A tensor of one is encoded by
serializing a uint8 tensor of the right bit patterns and parsing it back with the dtype's enum
swapped in (``ParseTensor`` has a kernel for every dtype). The bit patterns of a float format come
from a table of its values, rounded to nearest-even exactly as ``ml_dtypes`` (onnx's reference)
rounds, overflow included.
"""

from __future__ import annotations

import functools
from typing import Any

import ml_dtypes

from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    for_tflite,
    ir,
    np,
    ops,
    wrap,
)

#: TF dtype name -> the ml_dtypes type of the element types TF has no Cast kernel for.
_EMULATED: dict[str, Any] = {
    "int4": ml_dtypes.int4,
    "uint4": ml_dtypes.uint4,
    "int2": ml_dtypes.int2,
    "uint2": ml_dtypes.uint2,
    "float8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
    "float8_e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
    "float4_e2m1fn": ml_dtypes.float4_e2m1fn,
}
_SMALL_INTEGERS = {"int4", "uint4", "int2", "uint2"}
#: The float8 types Cast's ``saturate`` applies to (onnx.numpy_helper.saturate_cast).
_SATURATING = {"float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"}


@functools.cache
def _bits(name: str) -> int:
    return {"int2": 2, "uint2": 2, "int4": 4, "uint4": 4, "float4_e2m1fn": 4}.get(name, 8)


@functools.cache
def _values(name: str) -> np.ndarray:
    """Every value of an emulated type, one per bit pattern (indexed by the pattern)."""
    dtype = _EMULATED[name]
    if name in _SMALL_INTEGERS:
        info = ml_dtypes.iinfo(dtype)
        return np.arange(info.min, info.max + 1).astype(dtype)
    return np.arange(2 ** _bits(name), dtype=np.uint8).view(dtype)


def _decode_table(tf: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted Fingerprint hashes of every value of ``name``, and the values (float32 or int64)."""
    values = _values(name)
    with tf.init_scope():  # eagerly, while the signature function is being traced
        fingerprints = tf.raw_ops.Fingerprint(
            data=tf.constant(values.reshape(-1, 1)), method="farmhash64"
        )
        hashes = tf.bitcast(fingerprints, tf.int64).numpy()
    if len(set(hashes.tolist())) != len(hashes):  # pragma: no cover - farmhash64 of 1-byte rows
        raise ValueError(f"Fingerprint collides on the values of {name}")
    order = np.argsort(hashes)
    wide = np.int64 if name in _SMALL_INTEGERS else np.float32
    return hashes[order], values[order].astype(wide)


def decode(ctx: ExportContext, tensor: Any) -> Any:
    """An emulated-type tensor as int64 (integer types) or float32 (float formats), exactly."""
    tf = ctx.tf
    hashes, values = _decode_table(tf, tensor.dtype.name)
    keys = tf.bitcast(
        tf.raw_ops.Fingerprint(data=tf.reshape(tensor, [-1, 1]), method="farmhash64"), tf.int64
    )
    found = tf.gather(ctx.make_constant(values, "values"), tf.searchsorted(hashes, keys))
    return tf.reshape(found, tf.shape(tensor))


def _encode_patterns(ctx: ExportContext, patterns: Any, target: Any) -> Any:
    """uint8 bit patterns as a tensor of ``target`` (an emulated dtype), shape kept."""
    tf = ctx.tf
    serialized = tf.io.serialize_tensor(patterns)
    # A serialized TensorProto starts with field 1, the dtype enum (one varint byte here).
    header = bytes([0x08, target.as_datatype_enum])
    swapped = tf.strings.join([tf.constant(header), tf.strings.substr(serialized, 2, -1)])
    return tf.ensure_shape(tf.io.parse_tensor(swapped, target), patterns.shape)


@functools.cache
def _rounding_table(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """For a float format: the midpoints between its consecutive finite values (plus the
    overflow values below and above), the pattern each interval rounds to, whether a tie there
    goes up, and the NaN pattern; from ml_dtypes' own conversion."""
    dtype = _EMULATED[name]
    values = _values(name)
    as_float = values.astype(np.float64)
    finite = np.isfinite(as_float)
    # +0 before -0 so that zero keeps the +0 pattern (ties and signs are the reference's).
    order = sorted(
        np.flatnonzero(finite), key=lambda p: (as_float[p], bool(np.signbit(as_float[p])))
    )
    kept: list[int] = []
    for pattern in order:
        if kept and as_float[kept[-1]] == as_float[pattern]:
            continue
        kept.append(int(pattern))
    grid = as_float[kept]
    ulp_top = grid[-1] - grid[-2]
    below = np.array([-np.inf], np.float64).astype(dtype).view(np.uint8)[0]
    above = np.array([np.inf], np.float64).astype(dtype).view(np.uint8)[0]
    nan = int(np.array([np.nan], np.float64).astype(dtype).view(np.uint8)[0])
    points = np.concatenate([[grid[0] - ulp_top], grid, [grid[-1] + ulp_top]])
    patterns = np.concatenate([[below], kept, [above]]).astype(np.uint8)
    midpoints = ((points[:-1] + points[1:]) / 2).astype(np.float32)
    # A tie rounds to the even mantissa; the overflow neighbours count as even.
    even = (patterns & 1) == 0
    even[0] = even[-1] = True
    return midpoints, patterns, even, nan


def _encode_float(ctx: ExportContext, x: Any, name: str) -> Any:
    tf = ctx.tf
    midpoints, patterns, even, nan = _rounding_table(name)
    flat = tf.reshape(x, [-1])
    low = tf.searchsorted(midpoints, flat, side="left")
    high = tf.searchsorted(midpoints, flat, side="right")
    # low != high: exactly on a midpoint, between grid points low and low + 1.
    pick = tf.where(tf.not_equal(low, high) & ~tf.gather(tf.constant(even), low), low + 1, low)
    chosen = tf.gather(tf.constant(patterns), pick)
    chosen = tf.where(tf.math.is_nan(flat), tf.constant(nan, tf.uint8), chosen)
    return tf.reshape(chosen, tf.shape(x))


def _saturate(ctx: ExportContext, x: Any, target_name: str) -> Any:
    """Clamps to the target's finite range (NaN kept), as Cast does with ``saturate``."""
    tf = ctx.tf
    info = ml_dtypes.finfo(getattr(ml_dtypes, target_name))
    clipped = tf.clip_by_value(x, float(info.min), float(info.max))
    return tf.where(tf.math.is_nan(x), x, clipped)


def cast_tensor(ctx: ExportContext, tensor: Any, target: Any, saturate: bool = True) -> Any:
    """``tensor`` cast to ``target`` with ONNX's Cast semantics, for any pair of TF dtypes."""
    tf = ctx.tf
    source = tensor.dtype
    if source == target:
        return tensor
    if source == tf.string:
        if target == tf.bool:
            raise ctx.error("casts from strings to bool are not converted")
        # Integers parse as int64 (float64 would round those past 2**53).
        parsed = tf.int64 if target.is_integer else tf.float64
        return cast_tensor(ctx, tf.strings.to_number(tensor, parsed), target, saturate)
    if target == tf.string:
        if source.is_integer and source.name not in _EMULATED:
            return tf.strings.as_string(tensor)
        # numpy writes the shortest repr that reads back ("0.12345678"); TF has no such format.
        raise ctx.error(f"casts from {source.name} to strings are not converted")
    if source.name in _EMULATED:
        tensor = decode(ctx, tensor)
        source = tensor.dtype
    elif source.name.startswith("float8") and target != tf.float32:
        # float32 holds every float8 value; TF's float8 types have few kernels beyond Cast.
        tensor = tf.cast(tensor, tf.float32)
        source = tensor.dtype
        if source == target:
            return tensor
    if target == tf.bool:
        return tf.not_equal(tensor, tf.zeros((), source))
    if target.name in _SATURATING and saturate and source.is_floating:
        tensor = _saturate(ctx, tensor, target.name)
    if target.name not in _EMULATED:
        return tf.cast(tensor, target)
    if target.name in _SMALL_INTEGERS:
        # ml_dtypes truncates and keeps the low bits, as a C cast to a narrower integer does,
        # and stores only those bits (-8 as int4 is the byte 0x08, not 0xF8).
        low_bits = tf.math.floormod(tf.cast(tensor, tf.int64), 2 ** _bits(target.name))
        patterns = tf.cast(low_bits, tf.uint8)
    else:
        patterns = _encode_float(ctx, tf.cast(tensor, tf.float32), target.name)
    return _encode_patterns(ctx, patterns, target)


def _cast(ctx: ExportContext, target: Any, saturate: bool) -> Outputs:
    held = ctx.physical(0)
    return [wrap(cast_tensor(ctx, held.tensor, target, saturate), held.perm)]


@ops.register("Cast", since=6)
def cast_v6(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _cast(ctx, ctx.output_dtype(0), saturate=True)


@ops.register("Cast", since=19)
def cast_v19(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _cast(ctx, ctx.output_dtype(0), saturate=bool(ctx.attr("saturate", 1)))


@ops.register("CastLike", since=15)
def cast_like_v15(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _cast(ctx, ctx.input_dtype(1), saturate=True)


@ops.register("CastLike", since=19)
def cast_like_v19(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _cast(ctx, ctx.input_dtype(1), saturate=bool(ctx.attr("saturate", 1)))


@ops.register("BitCast", since=26)
def bit_cast_v26(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    target = ctx.output_dtype(0)
    if x.dtype == tf.bool or target == tf.bool:
        # bool is one byte 0/1 in both ONNX and TF, but TF's Bitcast refuses it.
        as_byte = tf.cast(x, tf.uint8) if x.dtype == tf.bool else x
        result = tf.bitcast(as_byte, tf.uint8 if target == tf.bool else target)
        return [tf.not_equal(result, 0) if target == tf.bool else result]
    result = tf.bitcast(x, target)
    if for_tflite(ctx) and x.shape.rank == 0:
        # TFLiteConverter gives a scalar BITCAST the shape [1].
        result = tf.reshape(result, [])
    return [result]
