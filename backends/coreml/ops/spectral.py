"""DFT and STFT as matrix products with exact tables of cosines and sines (MIL has no FFT).

Each bin ``k`` of a length-``N`` transform is ``sum_n x[n] e^(-+2 pi i k n / N)``: the signal's
axis is moved last and multiplied by the ``[n, k]`` tables (angles reduced mod ``N`` before the
float64 trigonometry, so the quarter turns are exact), real and imaginary parts apart. An axis
given at run time (opset 20) is resolved by the output's declared shape: each axis that would
give it is transformed and ``select`` picks the one asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import require_float
from unframe.backends.coreml.registry import ops


def _tables(used: int, length: int, bins: int, inverse: bool, halfspectrum: bool) -> tuple:
    """(cos, sin) tables ``[used, bins]`` for a length-``length`` transform; the inverse's carry
    1 / N, and an inverse of half a spectrum (irfft) also counts every bin but the first and the
    middle twice (Hermitian symmetry); rows are input positions, columns bins (or, for the
    inverse of half a spectrum, output positions and input bins swapped)."""
    n = np.arange(used).reshape(-1, 1)
    k = np.arange(bins).reshape(1, -1)
    angle = 2 * np.pi * ((n * k) % length) / length
    cos, sin = np.cos(angle), np.sin(angle)
    if inverse:
        cos, sin = cos / length, sin / length
    if halfspectrum:
        weights = np.where((n == 0) | (2 * n == length), 1.0, 2.0)
        cos, sin = cos * weights, sin * weights
    return cos, sin


def _transform(ctx: ExportContext, axis: int, length: int | None) -> Any:
    """x's DFT along ``axis`` (x's last axis holds the real and imaginary parts)."""
    mb = ctx.mb
    shape = [int(d or 0) for d in ctx.input_shape(0) or ()]
    rank = len(shape)
    inverse = bool(ctx.attr("inverse", 0))
    onesided = bool(ctx.attr("onesided", 0))
    present = shape[axis]
    if length is None:
        length = 2 * (present - 1) if inverse and onesided else present
    x = ctx.input(0)
    perm = [a for a in range(rank - 1) if a != axis] + [axis]
    parts = []
    for part in range(shape[-1]):
        begin, end = [0] * rank, list(shape)
        begin[-1], end[-1] = part, part + 1
        piece = mb.squeeze(x=mb.slice_by_index(x=x, begin=begin, end=end), axes=[-1])
        piece = mb.transpose(x=piece, perm=perm) if perm != list(range(rank - 1)) else piece
        parts.append(piece)
    real, imaginary = parts[0], parts[1] if len(parts) > 1 else None
    dtype = np.float16 if ctx.mil_dtype(ctx.input_dtype(0)) == "fp16" else np.float32
    outer = [shape[a] for a in perm[:-1]]
    back = [perm.index(a) for a in range(rank - 1)]
    if inverse and onesided:
        # irfft: half a spectrum in (the first N // 2 + 1 bins), N real values out.
        used = min(present, length // 2 + 1)
        if used < present:
            real, imaginary = (_cut(ctx, v, outer, used) for v in (real, imaginary))
        cos, sin = _tables(used, length, length, True, True)
        total = mb.matmul(x=real, y=cos.astype(dtype))
        if imaginary is not None:
            total = mb.sub(x=total, y=mb.matmul(x=imaginary, y=sin.astype(dtype)))
        results = [total]
    else:
        results = _folded(ctx, (real, imaginary), outer, (present, length), (inverse, onesided))
    finished = []
    for total in results:
        total = mb.transpose(x=total, perm=back) if back != list(range(rank - 1)) else total
        finished.append(mb.expand_dims(x=total, axes=[-1]))
    return finished[0] if len(finished) == 1 else mb.concat(values=finished, axis=-1)


def _cut(ctx: ExportContext, v: Any, outer: list[int], used: int) -> Any:
    if v is None:
        return None
    return ctx.mb.slice_by_index(x=v, begin=[0] * (len(outer) + 1), end=[*outer, used])


def _folded(
    ctx: ExportContext,
    parts: tuple[Any, Any],
    outer: list[int],
    lengths: tuple[int, int],
    kind: tuple[bool, bool],
) -> list[Any]:
    """The real and imaginary parts of the (inverse, ``kind[0]``; one-sided, ``kind[1]``) DFT
    of length ``lengths[1]`` of ``parts`` (``lengths[0]`` long) along their last axis.

    Positions ``n`` and ``N - n`` share a cosine and negate a sine, so the signal is folded
    first (their sums meet the cosines, their differences the sines): half the products, and a
    spectrum with Hermitian symmetry transforms to an imaginary part of exact zeros (a plain
    sum leaves rounding noise there).
    """
    mb = ctx.mb
    present, length = lengths
    inverse, onesided = kind
    dtype = np.float16 if ctx.mil_dtype(ctx.input_dtype(0)) == "fp16" else np.float32
    bins = length // 2 + 1 if onesided else length
    half = (length - 1) // 2
    mid = length % 2 == 0
    rank = len(outer) + 1
    folded: list[tuple[Any, Any] | None] = []
    for v in parts:
        if v is None:
            folded.append(None)
            continue
        if present > length:
            v = _cut(ctx, v, outer, length)
        elif present < length:  # zeros after the signal, up to the transform's length
            v = mb.pad(x=v, pad=[0, 0] * (rank - 1) + [0, length - present])
        first = mb.slice_by_index(x=v, begin=[0] * rank, end=[*outer, 1])
        pieces = [first]
        odd = None
        if half:
            low = mb.slice_by_index(x=v, begin=[0] * (rank - 1) + [1], end=[*outer, half + 1])
            mirrored = np.arange(length - 1, length - half - 1, -1, dtype=np.int32)
            high = mb.gather(x=v, indices=mirrored, axis=rank - 1)
            pieces.append(mb.add(x=low, y=high))
            odd = mb.sub(x=low, y=high)
        if mid:
            middle = length // 2
            pieces.append(
                mb.slice_by_index(x=v, begin=[0] * (rank - 1) + [middle], end=[*outer, middle + 1])
            )
        even = pieces[0] if len(pieces) == 1 else mb.concat(values=pieces, axis=-1)
        folded.append((even, odd))
    rows = [0, *range(1, half + 1)] + ([length // 2] if mid else [])
    k = np.arange(bins).reshape(1, -1)
    scale = 1.0 / length if inverse else 1.0
    cos = np.cos(2 * np.pi * ((np.asarray(rows).reshape(-1, 1) * k) % length) / length) * scale
    odd_rows = np.arange(1, half + 1).reshape(-1, 1)
    sin = np.sin(2 * np.pi * ((odd_rows * k) % length) / length) * scale
    sign = 1.0 if inverse else -1.0

    def product(pair: Any, cosines: bool) -> Any:
        if pair is None:
            return None
        even, odd = pair
        if cosines:
            return mb.matmul(x=even, y=cos.astype(dtype))
        return mb.matmul(x=odd, y=sin.astype(dtype)) if odd is not None else None

    def combine(plus: Any, minus: Any) -> Any:
        if minus is None:
            return plus
        return mb.add(x=plus, y=minus) if plus is not None else minus

    # (a + ib)(cos + i sign sin) = a cos - sign b sin + i (b cos + sign a sin)
    a_cos, b_cos = product(folded[0], True), product(folded[1], True)
    a_sin, b_sin = product(folded[0], False), product(folded[1], False)
    zeros = mb.mul(x=a_cos, y=np.asarray(0, dtype))
    minus_b_sin = mb.mul(x=b_sin, y=np.asarray(-sign, dtype)) if b_sin is not None else None
    plus_a_sin = mb.mul(x=a_sin, y=np.asarray(sign, dtype)) if a_sin is not None else None
    real = combine(a_cos, minus_b_sin)
    imaginary = combine(b_cos, plus_a_sin)
    return [real, imaginary if imaginary is not None else zeros]


def _length(ctx: ExportContext) -> int | None:
    if not ctx.has_input(1):
        return None
    known = ctx.ints(1)
    if known is None:
        raise ctx.error("dft_length computed at run time")
    return int(known[0])


@ops.register("DFT", since=17)
def dft_v17(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "DFT")
    rank = ctx.input_rank(0)
    axis = int(ctx.attr("axis", 1)) % rank
    if axis == rank - 1:
        raise ctx.error("axis is the last axis, which holds the real and imaginary parts")
    return [_transform(ctx, axis, _length(ctx))]


@ops.register("DFT", since=20)
def dft_v20(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "DFT")
    shape = ctx.input_shape(0)
    if shape is None or any(d is None for d in shape):
        raise ctx.error("an input of a shape unknown before run time")
    rank = len(shape)
    length = _length(ctx)
    known = ctx.ints(2) if ctx.has_input(2) else [-2]
    if known is not None:
        axis = known[0] % rank
        if axis == rank - 1:
            raise ctx.error("axis is the last axis, which holds the real and imaginary parts")
        return [_transform(ctx, axis, length)]
    declared = node.outputs[0].shape
    if declared is None or not all(isinstance(d, int) for d in declared):
        raise ctx.error("axis computed at run time, and the output's shape unknown")
    candidates = [
        a for a in range(rank - 1) if _result_shape(ctx, list(shape), a, length) == list(declared)
    ]
    if not candidates:
        raise ctx.error("no axis gives the output's declared shape")
    mb = ctx.mb
    axis_var = (
        mb.cast(x=ctx.input(2), dtype="int32")
        if ctx.mil_dtype(ctx.input_dtype(2)) != "int32"
        else ctx.input(2)
    )
    axis_var = mb.mod(x=axis_var, y=np.int32(rank))
    result = _transform(ctx, candidates[-1], length)
    for axis in reversed(candidates[:-1]):
        result = mb.select(
            cond=mb.equal(x=axis_var, y=np.int32(axis)), a=_transform(ctx, axis, length), b=result
        )
    return [result]


def _result_shape(ctx: ExportContext, shape: list[Any], axis: int, length: int | None) -> list[int]:
    inverse, onesided = bool(ctx.attr("inverse", 0)), bool(ctx.attr("onesided", 0))
    present = int(shape[axis])
    if length is None:
        length = 2 * (present - 1) if inverse and onesided else present
    out = [int(d) for d in shape]
    if inverse and onesided:
        out[axis], out[-1] = length, 1
    else:
        out[axis], out[-1] = (length // 2 + 1 if onesided else length), 2
    return out


@ops.register("STFT", since=17)
def stft_v17(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """Frames gathered at ``f * frame_step + j`` (the step may be given at run time), weighted
    by the window, and transformed as DFT. A frame length given only at run time is resolved by
    the output's declared bins: each length that gives them is built and ``select`` picks the
    one asked for."""
    require_float(ctx, "STFT")
    mb = ctx.mb
    shape = ctx.input_shape(0)
    declared = node.outputs[0].shape
    if shape is None or any(d is None for d in shape) or len(shape) != 3:
        raise ctx.error("a signal of a shape unknown before run time")
    if declared is None or not all(isinstance(d, int) for d in declared):
        raise ctx.error("the output's shape is not declared (its frame count and bins)")
    batch, signal_length, parts = (int(d or 0) for d in shape)
    frames, bins = int(declared[1]), int(declared[2])  # type: ignore[arg-type]
    onesided = bool(ctx.attr("onesided", 1))
    window = ctx.input(2) if ctx.has_input(2) else None
    if window is not None:
        window_shape = ctx.input_shape(2)
        if window_shape is None or window_shape[0] is None:
            raise ctx.error("a window of a length unknown before run time")
        lengths = [int(window_shape[0])]
    elif ctx.has_input(3) and ctx.ints(3) is not None:
        lengths = [int((ctx.ints(3) or [0])[0])]
    elif ctx.has_input(3):
        lengths = [2 * (bins - 1), 2 * bins - 1] if onesided else [bins]
    else:
        raise ctx.error("neither a window nor a frame_length")
    lengths = [n for n in lengths if n > 0 and (n // 2 + 1 if onesided else n) == bins]
    if not lengths:
        raise ctx.error("no frame length gives the output's declared bins")
    step = ctx.input(1)
    if ctx.mil_dtype(ctx.input_dtype(1)) != "int32":
        step = mb.cast(x=step, dtype="int32")
    starts = mb.mul(x=np.arange(frames, dtype=np.int32).reshape(frames, 1), y=step)
    zero_type = np.float16 if ctx.mil_dtype(ctx.input_dtype(0)) == "fp16" else np.float32
    results = []
    for length in lengths:
        positions = mb.add(x=starts, y=np.arange(length, dtype=np.int32).reshape(1, length))
        # A frame running past the signal reads zeros there, as onnx's reference pads it.
        inside = mb.less(x=positions, y=np.int32(signal_length))
        safe = mb.minimum(x=positions, y=np.int32(signal_length - 1))
        flat = mb.reshape(x=safe, shape=[frames * length])
        framed = mb.reshape(
            x=mb.gather(x=ctx.input(0), indices=flat, axis=1), shape=[batch, frames, length, parts]
        )
        framed = mb.select(
            cond=mb.reshape(x=inside, shape=[1, frames, length, 1]),
            a=framed,
            b=np.zeros((1, 1, 1, 1), zero_type),
        )
        if window is not None:
            framed = mb.mul(x=framed, y=mb.reshape(x=window, shape=[1, 1, length, 1]))
        pieces = [
            mb.squeeze(
                x=mb.slice_by_index(
                    x=framed, begin=[0, 0, 0, part], end=[batch, frames, length, part + 1]
                ),
                axes=[-1],
            )
            for part in range(parts)
        ]
        real, imaginary = pieces[0], pieces[1] if parts > 1 else None
        transformed = _folded(
            ctx, (real, imaginary), [batch, frames], (length, length), (False, onesided)
        )
        results.append(
            mb.concat(values=[mb.expand_dims(x=t, axes=[-1]) for t in transformed], axis=-1)
        )
    result = results[-1]
    if len(results) > 1:
        frame_length = ctx.input(3)
        if ctx.mil_dtype(ctx.input_dtype(3)) != "int32":
            frame_length = mb.cast(x=frame_length, dtype="int32")
        result = mb.select(
            cond=mb.equal(x=frame_length, y=np.int32(lengths[0])), a=results[0], b=result
        )
    return [result]
