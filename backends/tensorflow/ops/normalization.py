"""Normalizations beyond Batch/LayerNormalization: InstanceNormalization, LRN, LpNormalization,
and BatchNormalization's training mode. They reduce over logical axes mapped to where the input
is held, so a channels-last feature map stays channels-last."""

from __future__ import annotations

from typing import Any

from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    ir,
    normalize_axis,
    ops,
    wrap,
)


def _channel_shape(rank: int, channel_axis: int) -> list[int]:
    """A per-channel vector's shape, broadcastable at physical ``channel_axis``."""
    return [-1 if axis == channel_axis else 1 for axis in range(rank)]


@ops.register("InstanceNormalization", since=6)
def instance_normalization_v6(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    held = ctx.physical(0)
    x = held.tensor
    rank = len(x.shape)
    epsilon = float(ctx.attr("epsilon", 1e-5))
    axes = [held.physical_axis(axis) for axis in range(2, rank)]
    mean, variance = tf.nn.moments(x, axes=axes, keepdims=True)
    shape = _channel_shape(rank, held.physical_axis(1))
    scale = tf.reshape(ctx.input(1), shape)
    bias = tf.reshape(ctx.input(2), shape)
    normalized = (x - mean) * tf.math.rsqrt(variance + tf.cast(epsilon, x.dtype))
    return [wrap(normalized * scale + bias, held.perm)]


@ops.register("LRN", since=1)
def lrn_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    held = ctx.physical(0)
    x = held.tensor
    rank = len(x.shape)
    size = int(ctx.attr("size"))
    alpha = float(ctx.attr("alpha", 1e-4))
    beta = float(ctx.attr("beta", 0.75))
    bias = float(ctx.attr("bias", 1.0))
    axis = held.physical_axis(1)
    # The window over channels: floor((size-1)/2) before, ceil((size-1)/2) after.
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    paddings = [[before, after] if i == axis else [0, 0] for i in range(rank)]
    squared = tf.pad(tf.square(x), paddings)
    channels = tf.shape(x)[axis]
    total = tf.zeros_like(x)
    for offset in range(size):
        total = total + tf.gather(squared, tf.range(offset, offset + channels), axis=axis)
    scale = tf.pow(bias + (alpha / size) * total, beta)
    return [wrap(x / scale, held.perm)]


@ops.register("LpNormalization", since=1)
def lp_normalization_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    held = ctx.physical(0)
    x = held.tensor
    rank = len(x.shape)
    axis = held.physical_axis(normalize_axis(int(ctx.attr("axis", -1)), rank))
    p = int(ctx.attr("p", 2))
    if p == 1:
        norm = tf.reduce_sum(tf.abs(x), axis=axis, keepdims=True)
    elif p == 2:
        norm = tf.sqrt(tf.reduce_sum(tf.square(x), axis=axis, keepdims=True))
    else:
        raise ctx.error(f"p must be 1 or 2 (got {p})")
    # A zero norm gives 0, not NaN (as onnx's reference does).
    return [wrap(tf.math.divide_no_nan(x, norm), held.perm)]


def batch_normalization_training(ctx: ExportContext) -> Outputs:
    """Y from the batch's own mean and (population) variance, and the running mean and
    variance updated with momentum (onnx's reference)."""
    tf = ctx.tf
    held = ctx.physical(0)
    x = held.tensor
    rank = len(x.shape)
    channel_axis = held.physical_axis(1)
    epsilon = float(ctx.attr("epsilon", 1e-5))
    momentum = float(ctx.attr("momentum", 0.9))
    axes = [axis for axis in range(rank) if axis != channel_axis]
    batch_mean, batch_var = tf.nn.moments(x, axes=axes)
    shape = _channel_shape(rank, channel_axis)

    def per_channel(value: Any) -> Any:
        return tf.reshape(value, shape)

    scale, bias = ctx.input(1), ctx.input(2)
    normalized = (x - per_channel(batch_mean)) * tf.math.rsqrt(
        per_channel(batch_var) + tf.cast(epsilon, x.dtype)
    )
    y = normalized * per_channel(scale) + per_channel(bias)
    running_mean = ctx.input(3) * momentum + batch_mean * (1 - momentum)
    running_var = ctx.input(4) * momentum + batch_var * (1 - momentum)
    return [wrap(y, held.perm), running_mean, running_var]
