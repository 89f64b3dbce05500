"""Activations and the softmax family; pointwise ones keep their input's layout."""

from __future__ import annotations

import math
from typing import Any

from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    elementwise_inputs,
    for_tflite,
    ir,
    normalize_axis,
    ops,
    wrap,
)


def _pointwise(ctx: ExportContext, result: Any) -> Outputs:
    return [wrap(result, ctx.physical(0).perm)]


def _x(ctx: ExportContext) -> Any:
    return ctx.physical(0).tensor


@ops.register("Relu", since=6)
def relu_v6(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _pointwise(ctx, ctx.tf.nn.relu(_x(ctx)))


@ops.register("LeakyRelu", since=6)
def leaky_relu_v6(node: ir.Node, ctx: ExportContext) -> Outputs:
    alpha = float(ctx.attr("alpha"))
    return _pointwise(ctx, ctx.tf.nn.leaky_relu(_x(ctx), alpha=alpha))


@ops.register("Sigmoid", since=6)
def sigmoid_v6(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _pointwise(ctx, ctx.tf.sigmoid(_x(ctx)))


@ops.register("Tanh", since=6)
def tanh_v6(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _pointwise(ctx, ctx.tf.tanh(_x(ctx)))


@ops.register("Elu", since=6)
def elu_v6(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = _x(ctx)
    alpha = tf.constant(float(ctx.attr("alpha")), x.dtype)
    return _pointwise(ctx, tf.where(x > 0, x, alpha * (tf.exp(x) - 1)))


@ops.register("Selu", since=6)
def selu_v6(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = _x(ctx)
    alpha = tf.constant(float(ctx.attr("alpha")), x.dtype)
    gamma = tf.constant(float(ctx.attr("gamma")), x.dtype)
    return _pointwise(ctx, gamma * tf.where(x > 0, x, alpha * (tf.exp(x) - 1)))


@ops.register("Celu", since=12)
def celu_v12(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = _x(ctx)
    alpha = tf.constant(float(ctx.attr("alpha")), x.dtype)
    return _pointwise(ctx, tf.maximum(x, 0) + tf.minimum(alpha * (tf.exp(x / alpha) - 1), 0))


@ops.register("Softplus", since=1)
def softplus_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _pointwise(ctx, ctx.tf.math.softplus(_x(ctx)))


@ops.register("Softsign", since=1)
def softsign_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _pointwise(ctx, ctx.tf.math.softsign(_x(ctx)))


@ops.register("HardSigmoid", since=6)
def hard_sigmoid_v6(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = _x(ctx)
    alpha = tf.constant(float(ctx.attr("alpha")), x.dtype)
    beta = tf.constant(float(ctx.attr("beta")), x.dtype)
    return _pointwise(ctx, tf.clip_by_value(alpha * x + beta, 0, 1))


@ops.register("HardSwish", since=14)
def hard_swish_v14(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = _x(ctx)
    return _pointwise(ctx, x * tf.clip_by_value(x / 6 + 0.5, 0, 1))


@ops.register("Mish", since=18)
def mish_v18(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = _x(ctx)
    if for_tflite(ctx):
        # tanh(log(1 + e**x)) is n / (n + 2) for n = e**x (e**x + 2): no tanh of a value that
        # lost e**x where it is tiny; beyond 20 it is 1 in float32 (and e**2x would overflow).
        e = tf.exp(tf.minimum(x, 20.0))
        n = e * (e + 2.0)
        return _pointwise(ctx, tf.where(x > 20.0, x, x * n / (n + 2.0)))
    return _pointwise(ctx, x * tf.tanh(tf.math.softplus(x)))


@ops.register("ThresholdedRelu", since=10)
def thresholded_relu_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = _x(ctx)
    alpha = tf.constant(float(ctx.attr("alpha")), x.dtype)
    return _pointwise(ctx, tf.where(x > alpha, x, tf.zeros_like(x)))


@ops.register("Gelu", since=20)
def gelu_v20(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = _x(ctx)
    approximate = ctx.attr("approximate", "none")
    if approximate == "tanh":
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)
        return _pointwise(ctx, 0.5 * x * (1 + tf.tanh(inner)))
    return _pointwise(ctx, 0.5 * x * (1 + tf.math.erf(x / math.sqrt(2))))


@ops.register("Swish", since=24)
def swish_v24(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = _x(ctx)
    alpha = float(ctx.attr("alpha", 1.0))
    if alpha == 1.0:
        return _pointwise(ctx, tf.nn.silu(x))  # TF's fused kernel
    return _pointwise(ctx, x * tf.sigmoid(tf.constant(alpha, x.dtype) * x))


@ops.register("PRelu", since=9)
def prelu_v9(node: ir.Node, ctx: ExportContext) -> Outputs:
    (x, slope), perm = elementwise_inputs(ctx, 2)
    tf = ctx.tf
    return [wrap(tf.where(x < 0, x * slope, x), perm)]


def _softmax(ctx: ExportContext, log: bool) -> Outputs:
    held = ctx.physical(0)
    rank = len(held.tensor.shape)
    axis = held.physical_axis(normalize_axis(int(ctx.attr("axis", -1)), rank))
    fn = ctx.tf.nn.log_softmax if log else ctx.tf.nn.softmax
    return [wrap(fn(held.tensor, axis=axis), held.perm)]


def _softmax_as_matrix(ctx: ExportContext, log: bool) -> Outputs:
    # Before opset 13 the input is read as a matrix, dims before ``axis`` by dims from it, and
    # the softmax runs over each row.
    tf = ctx.tf
    x = ctx.input(0)
    rank = len(x.shape)
    axis = normalize_axis(int(ctx.attr("axis", 1)), rank)
    shape = tf.shape(x, out_type=tf.int64)
    rows = tf.reshape(x, tf.stack([tf.reduce_prod(shape[:axis]), tf.reduce_prod(shape[axis:])]))
    fn = tf.nn.log_softmax if log else tf.nn.softmax
    return [tf.reshape(fn(rows, axis=1), shape)]


@ops.register("Softmax", since=1)
def softmax_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _softmax_as_matrix(ctx, log=False)


@ops.register("LogSoftmax", since=1)
def log_softmax_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _softmax_as_matrix(ctx, log=True)


@ops.register("Softmax", since=13)
def softmax_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _softmax(ctx, log=False)


@ops.register("LogSoftmax", since=13)
def log_softmax_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _softmax(ctx, log=True)
