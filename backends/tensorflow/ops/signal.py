"""Signal processing: DFT, STFT and MelWeightMatrix on TF's FFT kernels.

ONNX holds complex values as a trailing axis of 2 (real, imaginary; 1 for a real signal); TF's
``tf.signal.fft`` transforms the last axis of a complex tensor, so the transformed axis is moved
last and back, and the trailing pair is split and stacked at the boundaries.
"""

from __future__ import annotations

import math
from typing import Any

from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    ir,
    normalize_axis,
    ops,
)


def _complex(ctx: ExportContext, x: Any, wide: bool = False) -> Any:
    """The ONNX (.., 1 or 2) real/complex layout as a complex tensor without the trailing axis
    (complex128 where ``wide`` or the input is float64, else complex64)."""
    tf = ctx.tf
    x = tf.cast(x, tf.float64 if wide or x.dtype == tf.float64 else tf.float32)
    last = x.shape[-1]
    if last == 1:
        return tf.complex(x[..., 0], tf.zeros_like(x[..., 0]))
    if last == 2:
        return tf.complex(x[..., 0], x[..., 1])
    raise ctx.error(f"the signal's last axis must be 1 (real) or 2 (complex), got {last}")


def _pairs(ctx: ExportContext, value: Any, dtype: Any) -> Any:
    tf = ctx.tf
    return tf.cast(tf.stack([tf.math.real(value), tf.math.imag(value)], axis=-1), dtype)


def _fit_length(ctx: ExportContext, value: Any, length: Any) -> Any:
    """``value``'s last axis zero-padded or truncated to ``length``."""
    tf = ctx.tf
    size = tf.shape(value)[-1]
    rank = len(value.shape)
    padding = [[0, 0]] * (rank - 1) + [[0, tf.maximum(length - size, 0)]]
    return tf.pad(value, padding)[..., :length]


def _dft(ctx: ExportContext, axis: Any, length_index: int) -> Outputs:
    """``axis`` counts the trailing (real, imaginary) axis, as ONNX's does: a Python int, or a
    scalar tensor where it is computed at run time."""
    tf = ctx.tf
    x = ctx.input(0)
    rank = len(x.shape)
    inverse = bool(ctx.attr("inverse", 0))
    # The forward transform in complex128: TF's complex64 FFT lands ~1e-5 from numpy's (the
    # reference's) on 100-point signals. The inverse in the input's precision, where numpy's
    # complex64 inverse leaves rounding noise (~2e-7) that the tests' atol of 1e-7 holds to.
    signal = _complex(ctx, x, wide=not inverse)
    if isinstance(axis, int):
        axis = normalize_axis(axis, rank)
        if axis == rank - 1:
            raise ctx.error("the DFT axis cannot be the trailing (real, imaginary) axis")
        order: Any = [a for a in range(rank - 1) if a != axis] + [axis]
    else:
        axis = tf.math.floormod(tf.cast(axis, tf.int32), rank)
        others = tf.range(rank - 1)
        order = tf.concat([tf.boolean_mask(others, tf.not_equal(others, axis)), [axis]], 0)
    moved = tf.transpose(signal, order)
    onesided = bool(ctx.attr("onesided", 0))
    if ctx.has_input(length_index):
        length = tf.cast(tf.reshape(ctx.input(length_index), []), tf.int32)
    elif inverse and onesided:
        length = 2 * (tf.shape(moved)[-1] - 1)
    else:
        length = tf.shape(moved)[-1]
    if inverse and onesided:
        # One-sided spectrum in, real signal out (numpy's irfft).
        real = tf.signal.irfft(moved, fft_length=tf.reshape(length, [1]))
        result = tf.transpose(real, tf.math.invert_permutation(order))
        return [tf.cast(result[..., None], x.dtype)]
    moved = _fit_length(ctx, moved, length)
    result = tf.signal.ifft(moved) if inverse else tf.signal.fft(moved)
    if onesided:
        result = result[..., : tf.shape(result)[-1] // 2 + 1]
    return [_pairs(ctx, tf.transpose(result, tf.math.invert_permutation(order)), x.dtype)]


@ops.register("DFT", since=17)
def dft_v17(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _dft(ctx, int(ctx.attr("axis", 1)), 1)


@ops.register("DFT", since=20)
def dft_v20(node: ir.Node, ctx: ExportContext) -> Outputs:
    if not ctx.has_input(2):
        return _dft(ctx, -2, 1)
    known = ctx.constant_input(2)
    if known is not None:
        return _dft(ctx, int(known.reshape(-1)[0]), 1)
    return _dft(ctx, ctx.tf.reshape(ctx.input(2), []), 1)


@ops.register("STFT", since=17)
def stft_v17(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    signal = _complex(ctx, x)  # [batch, length]
    step = tf.cast(tf.reshape(ctx.input(1), []), tf.int32)
    window = ctx.input(2) if ctx.has_input(2) else None
    if ctx.has_input(3):
        frame_length = tf.cast(tf.reshape(ctx.input(3), []), tf.int32)
    elif window is not None:
        frame_length = tf.shape(window)[0]
    else:
        raise ctx.error("STFT needs a window or a frame_length")
    frames = tf.signal.frame(signal, frame_length, step, axis=1)  # [batch, frames, length]
    if window is not None:
        frames = frames * tf.cast(window, frames.dtype)
    result = tf.signal.fft(frames)
    if bool(ctx.attr("onesided", 1)):
        result = result[..., : frame_length // 2 + 1]
    return [_pairs(ctx, result, x.dtype)]


@ops.register("MelWeightMatrix", since=17)
def mel_weight_matrix_v17(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    f64 = tf.float64
    mel_bins = tf.cast(tf.reshape(ctx.input(0), []), tf.int64)
    dft_length = tf.cast(tf.reshape(ctx.input(1), []), tf.int64)
    sample_rate = tf.cast(tf.reshape(ctx.input(2), []), f64)
    # onnx's reference computes the edges' log in the inputs' own precision, then float64.
    low_in, high_in = tf.reshape(ctx.input(3), []), tf.reshape(ctx.input(4), [])
    low_mel = tf.cast(2595 * tf.math.log1p(low_in / 700), f64) / math.log(10)
    high_mel = tf.cast(2595 * tf.math.log1p(high_in / 700), f64) / math.log(10)
    count = mel_bins + 2
    mel_step = (high_mel - low_mel) / tf.cast(count, f64)
    hertz = 700 * tf.math.expm1(
        (tf.cast(tf.range(count), f64) * mel_step + low_mel) / 2595 * math.log(10)
    )
    edges = tf.cast(tf.math.floordiv(tf.cast(dft_length + 1, f64) * hertz, sample_rate), tf.int64)
    lower, center, upper = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    j = tf.range(dft_length // 2 + 1)[:, None]
    jf, lf, cf, uf = (tf.cast(v, f64) for v in (j, lower, center, upper))
    rising = tf.where(
        tf.equal(center, lower),
        tf.cast(tf.equal(j, center), f64),
        tf.where((j >= lower) & (j <= center), (jf - lf) / tf.maximum(cf - lf, 1.0), 0.0),
    )
    falling_zone = (upper > center) & (j >= center) & (j < upper)
    falling = (uf - jf) / tf.maximum(uf - cf, 1.0)
    weights = tf.where(falling_zone, falling, rising)
    dtype = ir.DataType(int(ctx.attr("output_datatype", 1)) or 1).numpy()
    return [tf.cast(weights, tf.as_dtype(dtype))]
