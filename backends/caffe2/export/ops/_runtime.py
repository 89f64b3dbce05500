"""Run-time parameters: ONNX inputs (starts, pads, axes, target sizes) that are not constants.

Caffe2 holds most of these as operator arguments, fixed in the net. Where ONNX feeds them as
tensors, the converters here compute with them in the net instead: per data axis, the parameter
that applies to it is picked out of the tensor (``axis_param``), clamped with integer
comparisons, and turned into the positions to read with ``Range``; a ``Gather`` along the axis
then does the slicing or padding. Caffe2's Max, Min and Clip are float-only and its Where wants
operands of one shape, so integer clamps are built from LT/GT and Where on expanded bounds.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.export.context import ExportContext, caffe2_dtype
from unframe.backends.caffe2.export.ops._common import reshape


def int64(ctx: ExportContext, value: ir.Value) -> str:
    """``value``'s blob as int64 (ONNX lets starts, ends and shapes be int32 too)."""
    blob = ctx.blob(value)
    if ctx.dtype(value) in (None, ir.DataType.INT64):
        return blob
    return ctx.temp("Cast", [blob], "int64", to=caffe2_dtype(ir.DataType.INT64))


def scalar_of(ctx: ExportContext, value: ir.Value, blob: str | None = None) -> str:
    """``value`` (or its converted ``blob``), a scalar or a one-element vector, as a 0-d blob."""
    blob = blob or ctx.blob(value)
    if ctx.need_rank(value, "to read it as a scalar") == 0:
        return blob
    return ctx.temp("Squeeze", [blob], "scalar", dims=[0])


def const64(ctx: ExportContext, value: int) -> str:
    """A 0-d int64 constant."""
    return ctx.constant(np.array(value, dtype=np.int64), "int")


def double(ctx: ExportContext, value: float) -> str:
    """A 0-d double ``value`` to about 1e-15: Caffe2's arguments hold float32 values only, so it
    is the sum of its float32 rounding and the float32 rounding of what that leaves."""
    high = float(np.float32(value))
    low = float(np.float32(value - high))
    f64 = ir.DataType.DOUBLE
    return ctx.temp("Add", [ctx.scalar(high, f64), ctx.scalar(low, f64)], "double")


def like(ctx: ExportContext, blob: str, shape_of: str) -> str:
    """``blob`` expanded to the run-time shape of ``shape_of`` (Caffe2's Where needs one shape)."""
    return ctx.temp("Expand", [blob, ctx.temp("Shape", [shape_of], "shape")], "expanded")


def clamp(ctx: ExportContext, blob: str, low: int | str, high: int | str) -> str:
    """An integer ``blob`` limited to ``[low, high]`` (ints or 0-d int64 blobs), elementwise."""
    low_blob = like(ctx, const64(ctx, low) if isinstance(low, int) else low, blob)
    high_blob = like(ctx, const64(ctx, high) if isinstance(high, int) else high, blob)
    below = ctx.temp("LT", [blob, low_blob], "below")
    above = ctx.temp("GT", [blob, high_blob], "above")
    capped = ctx.temp("Where", [above, high_blob, blob], "capped")
    return ctx.temp("Where", [below, low_blob, capped], "clamped")


def axis_flag(ctx: ExportContext, axes: str, rank: int, axis: int) -> str:
    """A 0-d bool: whether the run-time ``axes`` (int64, negatives allowed) name ``axis``."""
    hits = _hits(ctx, axes, rank, axis)
    count = ctx.temp("ReduceSum", [hits], "count", axes=[0], keepdims=0)
    return ctx.temp("GT", [count, const64(ctx, 0)], "named")


def _hits(ctx: ExportContext, axes: str, rank: int, axis: int) -> str:
    """1 where an entry of ``axes`` names ``axis``, else 0 (int64, ``axes``' shape)."""
    same = ctx.temp("EQ", [axes, const64(ctx, axis)], "same")
    wrapped = ctx.temp("EQ", [axes, const64(ctx, axis - rank)], "same")
    either = ctx.temp("Or", [same, wrapped], "hit")
    return ctx.temp("Cast", [either], "hits", to=caffe2_dtype(ir.DataType.INT64))


def axis_param(
    ctx: ExportContext,
    values: str,
    axes: list[int] | str,
    rank: int,
    axis: int,
    default: int | str,
) -> str:
    """The 0-d int64 entry of ``values`` whose axis is ``axis``, else ``default`` (int or blob).

    ``axes`` is a normalized constant list (one per entry of ``values``) or a run-time blob.
    """
    fallback = const64(ctx, default) if isinstance(default, int) else default
    if isinstance(axes, list):
        if axis not in axes:
            return fallback
        index = ctx.constant(np.array(axes.index(axis), dtype=np.int64), "index")
        return ctx.temp("Gather", [values, index], "param")
    hits = _hits(ctx, axes, rank, axis)
    picked = ctx.temp("ReduceSum", [ctx.temp("Mul", [values, hits])], "param", axes=[0], keepdims=0)
    named = ctx.temp("GT", [ctx.temp("ReduceSum", [hits], "count", axes=[0], keepdims=0),
                            const64(ctx, 0)], "named")  # fmt: skip
    return ctx.temp("Where", [named, picked, fallback], "param")


def window(
    ctx: ExportContext,
    blob: str,
    rank: int,
    axis: int,
    dim: int,
    bounds: tuple[str, str],
    mode: str,
    fill: str | None = None,
) -> str:
    """``blob`` read at positions ``start .. stop - 1`` along ``axis`` (0-d int64 blobs).

    Positions outside ``[0, dim)`` follow ``mode``: ``constant`` writes ``fill`` (a 0-d blob of
    the data's type), ``edge`` repeats the border, ``reflect`` mirrors without repeating it and
    ``wrap`` continues periodically.
    """
    if dim == 0:
        raise ctx.error(f"cannot read positions of the empty axis {axis} at run time")
    start, stop = bounds
    positions = ctx.temp("Range", [start, stop, const64(ctx, 1)], "positions")
    if mode in ("constant", "edge") or (mode == "reflect" and dim == 1):
        sources = clamp(ctx, positions, 0, dim - 1)
    elif mode == "wrap":
        sources = ctx.temp("Mod", [positions], "sources", divisor=dim, sign_follow_divisor=1)
    elif mode == "reflect":
        period = 2 * (dim - 1)
        folded = ctx.temp("Mod", [positions], "folded", divisor=period, sign_follow_divisor=1)
        inside = ctx.temp("LT", [folded, const64(ctx, dim)], "inside")
        mirrored = ctx.temp("Sub", [const64(ctx, period), folded], "mirrored")
        sources = ctx.temp("Where", [inside, folded, mirrored], "sources")
    else:
        raise ctx.error(f"mode={mode!r} has no Caffe2 equivalent")
    read = ctx.temp("Gather", [blob, sources], "read", axis=axis)
    if mode != "constant":
        return read
    assert fill is not None  # constant mode always has a fill value
    after_start = ctx.temp("GE", [positions, const64(ctx, 0)], "after_start")
    before_end = ctx.temp("LT", [positions, const64(ctx, dim)], "before_end")
    valid = ctx.temp("And", [after_start, before_end], "valid")
    column = [1] * rank
    column[axis] = -1
    mask = like(ctx, reshape(ctx, valid, column), read)
    return ctx.temp("Where", [mask, read, like(ctx, fill, read)], "padded")
