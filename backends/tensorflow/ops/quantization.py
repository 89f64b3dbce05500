"""Quantization: QuantizeLinear, DequantizeLinear (per-tensor, per-axis, blocked),
DynamicQuantizeLinear, QLinearMatMul, QLinearConv, MatMulInteger, ConvInteger.

Integer results round half to even (``tf.round``) and saturate to the type's range. TensorFlow
casts floats to none of the 2- and 4-bit types nor the fnuz float 8s: those go through
``casting.cast_tensor`` (ONNX's Cast on any pair of TF types).
"""

from __future__ import annotations

from typing import Any

from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    Physical,
    channels_last,
    for_tflite,
    ir,
    normalize_axis,
    np,
    ops,
)
from unframe.backends.tensorflow.ops.casting import cast_tensor
from unframe.backends.tensorflow.ops.nn import _convolve, _resolve_pads, _spatial_attrs

_RANGES = {
    ir.DataType.UINT8: (0, 255),
    ir.DataType.INT8: (-128, 127),
    ir.DataType.UINT16: (0, 65535),
    ir.DataType.INT16: (-32768, 32767),
    ir.DataType.UINT4: (0, 15),
    ir.DataType.INT4: (-8, 7),
    ir.DataType.UINT2: (0, 3),
    ir.DataType.INT2: (-2, 1),
}
_NO_ZERO_POINT = {
    ir.DataType.FLOAT8E4M3FN,
    ir.DataType.FLOAT8E4M3FNUZ,
    ir.DataType.FLOAT8E5M2,
    ir.DataType.FLOAT8E5M2FNUZ,
    ir.DataType.FLOAT4E2M1,
}


def _tf_type(ctx: ExportContext, dtype: ir.DataType) -> Any:
    return ctx.tf.as_dtype(dtype.numpy())


def _param(ctx: ExportContext, value: Any, x: Any, axis: int, block_size: int) -> Any:
    """Scale/zero point broadcastable to ``x``: scalar, per-axis or blocked."""
    tf = ctx.tf
    rank = len(x.shape)
    if value.shape.rank == 0 or value.shape.num_elements() == 1:
        return tf.reshape(value, [])
    axis = normalize_axis(axis, rank)
    if not block_size:
        return tf.reshape(value, [-1 if i == axis else 1 for i in range(rank)])
    repeated = tf.repeat(value, block_size, axis=axis)
    return tf.gather(repeated, tf.range(tf.shape(x)[axis]), axis=axis)


def _to_float(ctx: ExportContext, x: Any) -> Any:
    return cast_tensor(ctx, x, ctx.tf.float32)


def _quantize(ctx: ExportContext, kind: ir.DataType, axis: int, block_size: int) -> Any:
    tf = ctx.tf
    x = ctx.input(0)
    scale = _param(ctx, ctx.input(1), x, axis, block_size)
    precision = int(ctx.attr("precision", 0)) if ctx.opset >= 25 else 0
    compute = _tf_type(ctx, ir.DataType(precision)) if precision else x.dtype
    scaled = tf.cast(x, compute) / tf.cast(scale, compute)
    zero = _param(ctx, ctx.input(2), x, axis, block_size) if ctx.has_input(2) else None
    if kind in _RANGES:
        low, high = _RANGES[kind]
        q = tf.round(tf.cast(scaled, tf.float32))
        if zero is not None:
            q = q + _to_float(ctx, zero)
        q = tf.clip_by_value(q, float(low), float(high))
        return cast_tensor(ctx, tf.cast(q, tf.int32), _tf_type(ctx, kind))
    scaled = tf.cast(scaled, tf.float32)
    if zero is not None:
        scaled = scaled + _to_float(ctx, zero)
    return cast_tensor(ctx, scaled, _tf_type(ctx, kind), bool(int(ctx.attr("saturate", 1))))


def _quantize_node(ctx: ExportContext, with_dtype_attrs: bool) -> Outputs:
    zero = ctx.node.inputs[2] if ctx.has_input(2) else None
    kind = ir.DataType.UINT8
    if zero is not None and zero.dtype is not None:
        kind = zero.dtype
    elif with_dtype_attrs and int(ctx.attr("output_dtype", 0)):
        kind = ir.DataType(int(ctx.attr("output_dtype")))
    block_size = int(ctx.attr("block_size", 0)) if with_dtype_attrs else 0
    return [_quantize(ctx, kind, int(ctx.attr("axis", 1)), block_size)]


@ops.register("QuantizeLinear", since=10)
def quantize_linear_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _quantize_node(ctx, with_dtype_attrs=False)


@ops.register("QuantizeLinear", since=21)
def quantize_linear_v21(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _quantize_node(ctx, with_dtype_attrs=True)


def _dequantize_node(ctx: ExportContext, with_dtype_attrs: bool) -> Outputs:
    tf = ctx.tf
    source = ctx.node.inputs[0]
    kind = source.dtype if source is not None else None
    axis = int(ctx.attr("axis", 1))
    block_size = int(ctx.attr("block_size", 0)) if with_dtype_attrs else 0
    x = ctx.input(0)
    dx = _to_float(ctx, x)
    if ctx.has_input(2) and kind not in _NO_ZERO_POINT:
        dx = dx - _to_float(ctx, _param(ctx, ctx.input(2), x, axis, block_size))
    scale = ctx.input(1)
    y = dx * tf.cast(_param(ctx, scale, x, axis, block_size), tf.float32)
    out_dtype = scale.dtype
    if with_dtype_attrs and int(ctx.attr("output_dtype", 0)):
        out_dtype = _tf_type(ctx, ir.DataType(int(ctx.attr("output_dtype"))))
    return [tf.cast(y, out_dtype)]


@ops.register("DequantizeLinear", since=10)
def dequantize_linear_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _dequantize_node(ctx, with_dtype_attrs=False)


@ops.register("DequantizeLinear", since=21)
def dequantize_linear_v21(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _dequantize_node(ctx, with_dtype_attrs=True)


@ops.register("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = tf.cast(ctx.input(0), tf.float32)
    low = tf.minimum(tf.reduce_min(x), 0.0)
    high = tf.maximum(tf.reduce_max(x), 0.0)
    scale = (high - low) / 255.0
    zero = tf.clip_by_value(tf.round((0.0 - low) / scale), 0.0, 255.0)
    y = tf.clip_by_value(tf.round(x / scale) + zero, 0.0, 255.0)
    return [tf.cast(y, tf.uint8), scale, tf.cast(zero, tf.uint8)]


def _centered(ctx: ExportContext, index: int, zero_index: int, axis: int, dtype: Any) -> Any:
    """Input ``index`` minus its zero point (per tensor, or per ``axis``) in ``dtype``."""
    tf = ctx.tf
    x = ctx.input(index)
    wide = tf.cast(x, dtype)
    if not ctx.has_input(zero_index):
        return wide
    zero = tf.cast(ctx.input(zero_index), dtype)
    if zero.shape.num_elements() != 1:
        rank = len(x.shape)
        axis = normalize_axis(axis, rank)
        return wide - tf.reshape(zero, [-1 if i == axis else 1 for i in range(rank)])
    return wide - tf.reshape(zero, [])


def _accumulator(ctx: ExportContext) -> Any:
    """float64 (exact integer sums to 2**53), or float32 for TFLite, whose builtins have no
    float64 arithmetic (exact to 2**24: uint8 x uint8 products over 258 terms)."""
    return ctx.tf.float32 if for_tflite(ctx) else ctx.tf.float64


def _requantize(ctx: ExportContext, value: Any, zero_index: int, like: Any) -> Any:
    """``value`` (the accumulator's type) rounded, shifted by the output zero point and
    saturated."""
    tf = ctx.tf
    dtype = ctx.input(zero_index).dtype if ctx.has_input(zero_index) else like
    if ctx.has_input(zero_index):
        value = value + tf.reshape(tf.cast(ctx.input(zero_index), _accumulator(ctx)), [])
    info = np.iinfo(dtype.as_numpy_dtype)
    return tf.cast(tf.clip_by_value(tf.round(value), float(info.min), float(info.max)), dtype)


def _scale64(ctx: ExportContext, index: int) -> Any:
    return ctx.tf.cast(ctx.input(index), _accumulator(ctx))


@ops.register("QLinearMatMul", since=10)
def qlinear_matmul_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    if for_tflite(ctx):  # TFLite's BATCH_MATMUL has no int32 kernel
        a = _centered(ctx, 0, 2, -1, tf.float32)
        b = _centered(ctx, 3, 5, -1, tf.float32)
        product = tf.linalg.matmul(a, b)
    else:
        a = _centered(ctx, 0, 2, -1, tf.int32)
        b = _centered(ctx, 3, 5, -1, tf.int32)
        product = tf.cast(tf.linalg.matmul(a, b), tf.float64)
    factor = _scale64(ctx, 1) * _scale64(ctx, 4) / _scale64(ctx, 6)
    return [_requantize(ctx, product * factor, 7, ctx.input(0).dtype)]


@ops.register("MatMulInteger", since=10)
def matmul_integer_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    rank_a = ctx.input_rank(0) or 2
    if for_tflite(ctx):  # TFLite's BATCH_MATMUL has no int32 kernel
        a = _centered(ctx, 0, 2, rank_a - 2 if rank_a > 1 else 0, tf.float32)
        b = _centered(ctx, 1, 3, -1, tf.float32)
        return [tf.cast(tf.round(tf.linalg.matmul(a, b)), tf.int32)]
    a = _centered(ctx, 0, 2, rank_a - 2 if rank_a > 1 else 0, tf.int32)
    b = _centered(ctx, 1, 3, -1, tf.int32)
    return [tf.linalg.matmul(a, b)]


def _integer_conv(ctx: ExportContext, x_zero: int, w_index: int, w_zero: int) -> Any:
    """The integer convolution of input 0 and weight ``w_index``, exact in the accumulator's
    type, in channels-last layout (TF's conv kernels take NHWC)."""
    tf = ctx.tf
    if int(ctx.attr("group", 1)) != 1:
        raise ctx.error("grouped integer convolution is not converted yet")
    rank = ctx.input_rank(0)
    if rank is None or rank < 3:
        raise ctx.error("needs an input of known rank 3 or more")
    x = tf.transpose(_centered(ctx, 0, x_zero, 1, _accumulator(ctx)), channels_last(rank))
    w = _centered(ctx, w_index, w_zero, 0, _accumulator(ctx))
    weight_shape = ctx.input_shape(w_index)
    if weight_shape is None or any(d is None for d in weight_shape[2:]):
        raise ctx.error("the weight's spatial shape must be known before run time")
    kernel = [int(d) for d in weight_shape[2:] if d is not None]
    attrs = _spatial_attrs(ctx, rank - 2, kernel)
    pads = _resolve_pads(ctx, x, attrs)
    filters = tf.transpose(w, (*range(2, rank), 1, 0))
    return _convolve(ctx, x, filters, pads, attrs["strides"], attrs["dilations"])


@ops.register("ConvInteger", since=10)
def conv_integer_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    rank = ctx.input_rank(0) or 4
    result = _integer_conv(ctx, 2, 1, 3)
    return [Physical(tf.cast(tf.round(result), tf.int32), channels_last(rank))]


@ops.register("QLinearConv", since=10)
def qlinear_conv_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    rank = ctx.input_rank(0) or 4
    acc = _integer_conv(ctx, 2, 3, 5)
    if ctx.has_input(8):
        acc = acc + tf.reshape(tf.cast(ctx.input(8), _accumulator(ctx)), [-1])
    # Channels-last: the per-output-channel scale broadcasts on the last axis.
    scale = _scale64(ctx, 1) * tf.reshape(_scale64(ctx, 4), [-1]) / _scale64(ctx, 6)
    result = _requantize(ctx, acc * scale, 7, ctx.input(0).dtype)
    return [Physical(result, channels_last(rank))]
