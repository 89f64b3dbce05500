"""Neural-network layers: FC, normalizations, LRN, activations, Softmax, Dropout."""

from __future__ import annotations

import math

import numpy as np

from unframe.backends.caffe2.native.executor.ops.math import erf
from unframe.backends.caffe2.native.executor.registry import (
    KernelTypes,
    OpContext,
    caffe2_op,
    canonical_axis,
)

# Registered for float only: UnaryElementwiseOp<TensorTypes<float>, ...> in each file.
_SIGMOID = KernelTypes.of("sigmoid_op.cc", np.float32)
_TANH = KernelTypes.of("tanh_op.cc", np.float32)
_SOFTSIGN = KernelTypes.of("softsign_op.cc", np.float32)
_RELU = KernelTypes.of("relu_op.cc", np.float32)
_ELU = KernelTypes.of("elu_op.cc", np.float32)  # UnaryElementwiseWithArgsOp<TensorTypes<float>...
# LeakyReluOp<float, CPUContext>, SoftplusOp<float, CPUContext>, SoftmaxOp<float, CPUContext>.
_LEAKY_RELU = KernelTypes.of("leaky_relu_op.cc", np.float32)
_SOFTPLUS = KernelTypes.of("softplus_op.cc", np.float32)
_SOFTMAX = KernelTypes.of("softmax_op.cc", np.float32)
_LP_NORM = KernelTypes.of("lpnorm_op.cc", np.float32)  # LpNormOp<float, CPUContext>


# -- fully connected ----------------------------------------------------------------------------
def _fc(ctx: OpContext, *, transposed: bool) -> list[np.ndarray]:
    x, w = ctx.input(0), ctx.input(1)
    axis = canonical_axis(ctx, ctx.arg_int("axis", 1), x.ndim)
    axis_w = canonical_axis(ctx, ctx.arg_int("axis_w", 1), w.ndim)
    m, k = math.prod(x.shape[:axis]), math.prod(x.shape[axis:])
    head, tail = math.prod(w.shape[:axis_w]), math.prod(w.shape[axis_w:])
    # FC's W is N x K (Y = X W^T); FCTransposed's is K x N (Y = X W).
    n, w_k = (tail, head) if transposed else (head, tail)
    if w_k != k:
        raise ctx.error(f"X {x.shape} (K={k} from axis {axis}) does not fit W {w.shape}")
    w2 = w.reshape(head, tail)
    y = x.reshape(m, k) @ (w2 if transposed else w2.T)
    b = ctx.optional_input(2)
    if b is not None:
        if b.size != n:
            raise ctx.error(f"bias has {b.size} values for {n} outputs")
        y = y + b.reshape(1, n)
    return [y.reshape(*x.shape[:axis], n).astype(np.result_type(x.dtype, w.dtype))]


@caffe2_op("FC")
def fc(ctx: OpContext) -> list[np.ndarray]:
    """Y = X W^T + b, X flattened to 2-D at ``axis`` and W at ``axis_w``."""
    return _fc(ctx, transposed=False)


@caffe2_op("FCTransposed")
def fc_transposed(ctx: OpContext) -> list[np.ndarray]:
    """Y = X W + b, W stored K x N."""
    return _fc(ctx, transposed=True)


# -- normalization ------------------------------------------------------------------------------
def _channel_shape(x: np.ndarray, order: str) -> tuple[int, tuple[int, ...]]:
    """The channel count and the shape that broadcasts a per-channel vector against ``x``."""
    if order == "NCHW":
        return x.shape[1], (1, x.shape[1]) + (1,) * (x.ndim - 2)
    return x.shape[-1], (1,) * (x.ndim - 1) + (x.shape[-1],)


def _per_channel(
    ctx: OpContext, value: np.ndarray, what: str, c: int, shape: tuple[int, ...]
) -> np.ndarray:
    if value.size != c:
        raise ctx.error(f"{what} has {value.size} values for {c} channels")
    return value.reshape(shape)


@caffe2_op("SpatialBN")
def spatial_bn(ctx: OpContext) -> list[np.ndarray]:
    """Inference batch norm: (X - mean) / sqrt(var + epsilon) * scale + bias, per channel."""
    if not ctx.arg_int("is_test", 0):
        raise ctx.unsupported(
            "training-mode SpatialBN (is_test=0) updates running statistics; the executor "
            "runs inference only (set is_test=1)"
        )
    x = ctx.input(0)
    if x.ndim < 2:
        raise ctx.error(f"expects at least a 2-D input, got shape {x.shape}")
    c, shape = _channel_shape(x, ctx.order())
    eps = ctx.arg_float("epsilon", 1e-5)
    scale, bias, mean, var = (
        _per_channel(ctx, ctx.input(i), name, c, shape).astype(np.float64)
        for i, name in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var"))
    )
    y = (x - mean) / np.sqrt(var + eps) * scale + bias
    return [y.astype(x.dtype)]


@caffe2_op("InstanceNorm")
def instance_norm(ctx: OpContext) -> list[np.ndarray]:
    """Normalizes each (sample, channel) over its spatial positions; outputs Y, mean, inv_std."""
    x = ctx.input(0)
    order = ctx.order()
    if x.ndim < 3:
        raise ctx.error(f"expects an N-D image batch, got shape {x.shape}")
    c, shape = _channel_shape(x, order)
    eps = ctx.arg_float("epsilon", 1e-5)
    axes = tuple(range(2, x.ndim)) if order == "NCHW" else tuple(range(1, x.ndim - 1))
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(x64.var(axis=axes, keepdims=True) + eps)
    scale = _per_channel(ctx, ctx.input(1), "scale", c, shape)
    bias = _per_channel(ctx, ctx.input(2), "bias", c, shape)
    y = (x64 - mean) * inv_std * scale + bias
    n = x.shape[0]
    return [
        y.astype(x.dtype),
        mean.reshape(n, c).astype(x.dtype),
        inv_std.reshape(n, c).astype(x.dtype),
    ]


@caffe2_op("LayerNorm")
def layer_norm(ctx: OpContext) -> list[np.ndarray]:
    """Normalizes over the dims from ``axis`` on; outputs Y, mean and std (shape[:axis] + [1])."""
    x = ctx.input(0)
    axis = canonical_axis(ctx, ctx.arg_int("axis", 1), x.ndim)
    eps = ctx.arg_float("epsilon", 1e-5)
    x64 = x.astype(np.float64)
    axes = tuple(range(axis, x.ndim))
    mean = x64.mean(axis=axes, keepdims=True)
    std = np.sqrt(x64.var(axis=axes, keepdims=True) + eps)
    y = (x64 - mean) / std
    if ctx.arg_int("elementwise_affine", 0):
        gamma, beta = ctx.input(1), ctx.input(2)
        inner = x.shape[axis:]
        if gamma.size != math.prod(inner) or beta.size != math.prod(inner):
            raise ctx.error(f"gamma {gamma.shape} and beta {beta.shape} must have shape {inner}")
        y = y * gamma.reshape(inner) + beta.reshape(inner)
    moments = (*x.shape[:axis], 1)
    return [
        y.astype(x.dtype),
        mean.reshape(moments).astype(x.dtype),
        std.reshape(moments).astype(x.dtype),
    ]


@caffe2_op("GroupNorm")
def group_norm(ctx: OpContext) -> list[np.ndarray]:
    """Normalizes channel groups per sample, then scales by gamma and shifts by beta."""
    x = ctx.input(0)
    order = ctx.order()
    group = ctx.arg_int("group", 32)
    eps = ctx.arg_float("epsilon", 1e-5)
    if x.ndim < 2:
        raise ctx.error(f"expects at least a 2-D input, got shape {x.shape}")
    c, shape = _channel_shape(x, order)
    if group <= 0 or c % group:
        raise ctx.error(f"{c} channels do not split into {group} groups")
    xc = np.moveaxis(x, -1, 1) if order == "NHWC" else x
    n = x.shape[0]
    grouped = xc.astype(np.float64).reshape(n, group, -1)
    mean = grouped.mean(axis=2, keepdims=True)
    inv_std = 1.0 / np.sqrt(grouped.var(axis=2, keepdims=True) + eps)
    y = ((grouped - mean) * inv_std).reshape(xc.shape)
    if order == "NHWC":
        y = np.moveaxis(y, 1, -1)
    y = y * _per_channel(ctx, ctx.input(1), "gamma", c, shape) + _per_channel(
        ctx, ctx.input(2), "beta", c, shape
    )
    return [
        y.astype(x.dtype),
        mean.reshape(n, group).astype(x.dtype),
        inv_std.reshape(n, group).astype(x.dtype),
    ]


@caffe2_op("LRN")
def lrn(ctx: OpContext) -> list[np.ndarray]:
    """Across-channel LRN: Y = X * (bias + alpha / size * sum of X^2 over the window)^-beta.

    The window of channel c spans c - (size - 1) // 2 to c + size - 1 - (size - 1) // 2. The
    second output is the scale term.
    """
    x = ctx.input(0)
    order = ctx.order()
    size = ctx.arg_int("size", 0)
    if size <= 0:
        raise ctx.error("argument 'size' must be a positive integer")
    alpha = ctx.arg_float("alpha", 0.0)
    beta = ctx.arg_float("beta", 0.0)
    bias = ctx.arg_float("bias", 1.0)
    xc = np.moveaxis(x, -1, 1) if order == "NHWC" else x
    squares = xc.astype(np.float64) ** 2
    pre = (size - 1) // 2
    padded = np.pad(squares, [(0, 0), (pre, size - 1 - pre)] + [(0, 0)] * (x.ndim - 2))
    cumulative = np.concatenate([np.zeros_like(padded[:, :1]), np.cumsum(padded, axis=1)], axis=1)
    window = cumulative[:, size:] - cumulative[:, :-size]
    scale = bias + alpha / size * window
    y = xc * scale ** (-beta)
    if order == "NHWC":
        y, scale = np.moveaxis(y, 1, -1), np.moveaxis(scale, 1, -1)
    return [np.ascontiguousarray(y, dtype=x.dtype), np.ascontiguousarray(scale, dtype=x.dtype)]


@caffe2_op("Normalize")
def normalize(ctx: OpContext) -> list[np.ndarray]:
    """X / max(||X||_2, 1e-12) along ``axis`` (default -1)."""
    x = ctx.input(0)
    axis = canonical_axis(ctx, ctx.arg_int("axis", -1), x.ndim)
    x64 = x.astype(np.float64)
    norm = np.sqrt(np.sum(x64 * x64, axis=axis, keepdims=True))
    return [(x64 / np.maximum(norm, 1e-12)).astype(x.dtype)]


@caffe2_op("LpNorm")
def lp_norm(ctx: OpContext) -> list[np.ndarray]:
    """sum |x| (p=1) or sum x^2 (p=2, no square root), divided by the size where average=1."""
    _LP_NORM.check(ctx, ctx.input(0))
    x = ctx.input(0).astype(np.float64)
    p = ctx.arg_int("p", 2)
    if p not in (1, 2):
        raise ctx.error(f"p must be 1 or 2, got {p}")
    total = np.sum(np.abs(x)) if p == 1 else np.sum(x * x)
    if ctx.arg_int("average", 0):
        if x.size == 0:
            # lpnorm_op.cc: size = average_ ? X.numel() : 1, then CAFFE_ENFORCE_GT(size, 0).
            raise ctx.error("average=1 needs a non-empty input (caffe2/operators/lpnorm_op.cc)")
        total = total / x.size
    return [np.asarray([total], dtype=ctx.input(0).dtype)]


# -- activations --------------------------------------------------------------------------------
def _float_input(ctx: OpContext) -> np.ndarray:
    x = ctx.input(0)
    if not np.issubdtype(x.dtype, np.floating):
        raise ctx.error(f"expects a floating-point input, got {x.dtype}")
    return x


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a negative argument only, so large |x| neither overflows nor warns.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@caffe2_op("Relu")
def relu(ctx: OpContext) -> list[np.ndarray]:
    x = ctx.input(0)
    _RELU.check(ctx, x)
    return [np.maximum(x, 0).astype(x.dtype)]


@caffe2_op("LeakyRelu")
def leaky_relu(ctx: OpContext) -> list[np.ndarray]:
    x = _float_input(ctx)
    _LEAKY_RELU.check(ctx, x)
    alpha = ctx.arg_float("alpha", 0.01)
    return [np.where(x >= 0, x, x * alpha).astype(x.dtype)]


@caffe2_op("ThresholdedRelu")
def thresholded_relu(ctx: OpContext) -> list[np.ndarray]:
    x = _float_input(ctx)
    alpha = ctx.arg_float("alpha", 1.0)
    return [np.where(x > alpha, x, 0).astype(x.dtype)]


@caffe2_op("PRelu")
def prelu(ctx: OpContext) -> list[np.ndarray]:
    """x where x > 0 else slope * x; one shared slope or one per channel (``order``)."""
    x = _float_input(ctx)
    slope = ctx.input(1)
    if slope.size != 1:
        if x.ndim < 2:
            raise ctx.error(f"a per-channel slope needs at least a 2-D input, got {x.shape}")
        c, shape = _channel_shape(x, ctx.order())
        slope = _per_channel(ctx, slope, "slope", c, shape)
    else:
        slope = slope.reshape(())
    return [np.where(x > 0, x, x * slope).astype(x.dtype)]


@caffe2_op("Elu")
def elu(ctx: OpContext) -> list[np.ndarray]:
    x = _float_input(ctx)
    _ELU.check(ctx, x)
    alpha = ctx.arg_float("alpha", 1.0)
    return [np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype)]


@caffe2_op("Selu")
def selu(ctx: OpContext) -> list[np.ndarray]:
    x = _float_input(ctx)
    alpha = ctx.arg_float("alpha", 1.6732632423543772848170429916717)
    scale = ctx.arg_float("scale", 1.0507009873554804934193349852946)
    return [(scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))).astype(x.dtype)]


@caffe2_op("Sigmoid")
def sigmoid(ctx: OpContext) -> list[np.ndarray]:
    x = _float_input(ctx)
    _SIGMOID.check(ctx, x)
    return [_sigmoid(x).astype(x.dtype)]


@caffe2_op("Tanh")
def tanh(ctx: OpContext) -> list[np.ndarray]:
    x = _float_input(ctx)
    _TANH.check(ctx, x)
    return [np.tanh(x)]


@caffe2_op("Softplus")
def softplus(ctx: OpContext) -> list[np.ndarray]:
    x = _float_input(ctx)
    _SOFTPLUS.check(ctx, x)
    return [np.logaddexp(0, x).astype(x.dtype)]


@caffe2_op("Softsign")
def softsign(ctx: OpContext) -> list[np.ndarray]:
    x = _float_input(ctx)
    _SOFTSIGN.check(ctx, x)
    return [(x / (1 + np.abs(x))).astype(x.dtype)]


@caffe2_op("HardSigmoid")
def hard_sigmoid(ctx: OpContext) -> list[np.ndarray]:
    x = _float_input(ctx)
    alpha, beta = ctx.arg_float("alpha", 0.2), ctx.arg_float("beta", 0.5)
    return [np.clip(alpha * x + beta, 0, 1).astype(x.dtype)]


@caffe2_op("Swish")
def swish(ctx: OpContext) -> list[np.ndarray]:
    x = _float_input(ctx)
    return [(x * _sigmoid(x)).astype(x.dtype)]


@caffe2_op("Gelu")
def gelu(ctx: OpContext) -> list[np.ndarray]:
    """x * Phi(x) with the exact erf, or the tanh approximation where fast_gelu=1."""
    x = _float_input(ctx)
    x64 = x.astype(np.float64)
    if ctx.arg_int("fast_gelu", 0):
        y = 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3)))
    else:
        y = 0.5 * x64 * (1 + erf(x64 / math.sqrt(2)))
    return [y.astype(x.dtype)]


@caffe2_op("Softmax")
def softmax(ctx: OpContext) -> list[np.ndarray]:
    """Softmax over all dims from ``axis`` (default 1) on, taken together as one."""
    x = _float_input(ctx)
    _SOFTMAX.check(ctx, x)
    axis = canonical_axis(ctx, ctx.arg_int("axis", 1), x.ndim)
    rows = x.reshape(math.prod(x.shape[:axis]), -1).astype(np.float64)
    shifted = np.exp(rows - rows.max(axis=1, keepdims=True))
    return [(shifted / shifted.sum(axis=1, keepdims=True)).reshape(x.shape).astype(x.dtype)]


@caffe2_op("Dropout")
def dropout(ctx: OpContext) -> list[np.ndarray]:
    """Identity with is_test=1 (the mask output, if asked for, is all true)."""
    x = ctx.input(0)
    ratio = ctx.arg_float("ratio", 0.5)
    if not ctx.arg_int("is_test", 0) and ratio != 0:
        raise ctx.unsupported(
            "training-mode Dropout (is_test=0) is random; the executor runs inference only "
            "(set is_test=1)"
        )
    return [x.copy(), np.ones(x.shape, dtype=np.bool_)]
