"""Pad by gathers: pads or axes known only at run time, negative pads (cropping), wrap mode and
reflect/edge on any axis, which MIL's ``pad`` (constant, non-negative widths; reflect and
replicate on the last two axes only) cannot hold.

Each axis reads, for output position ``o``, input position ``i = o - pad_begin``: constant mode
masks the positions outside ``[0, n)`` with the value, edge clamps them, wrap takes them mod
``n`` and reflect folds them into ``[0, n)`` with period ``2 (n - 1)``, as numpy and onnxruntime
do. The output's length is the declared one where the model gives it, else ``n + begin + end``
counted at run time (``range_1d``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import normalized_axes, scalar_like

MODES = ("constant", "reflect", "edge", "wrap")


def _int32(ctx: ExportContext, index: int) -> Any:
    """Input ``index`` as an int32 Var (a constant where known)."""
    known = ctx.ints(index)
    if known is not None:
        return ctx.make_constant(np.asarray(known, np.int32))
    var = ctx.input(index)
    if ctx.mil_dtype(ctx.input_dtype(index)) != "int32":
        var = ctx.mb.cast(x=var, dtype="int32")
    return var


def _widths(ctx: ExportContext, rank: int) -> list[tuple[Any, Any]]:
    """Each axis's (begin, end) pad: ints where known before run time, else int32 scalar Vars."""
    mb = ctx.mb
    pads_known = ctx.ints(1)
    count = (ctx.input_shape(1) or (None,))[0]
    if count is None:
        raise ctx.error("pads of a length unknown before run time")
    per_axis = count // 2
    axes_known: list[int] | None
    if ctx.has_input(3):
        axes_known = ctx.ints(3)
        if axes_known is not None:
            axes_known = normalized_axes(axes_known, rank)
    else:
        axes_known = list(range(rank))
    axes: Any = None
    if axes_known is None:
        axes = _int32(ctx, 3)
        axes = mb.select(
            cond=mb.less(x=axes, y=np.int32(0)), a=mb.add(x=axes, y=np.int32(rank)), b=axes
        )
    pads = None if pads_known is not None else _int32(ctx, 1)
    widths: list[tuple[Any, Any]] = []
    for axis in range(rank):
        if axes_known is not None and pads_known is not None:
            if axis in axes_known:
                k = axes_known.index(axis)
                widths.append((pads_known[k], pads_known[k + per_axis]))
            else:
                widths.append((0, 0))
            continue
        if axes_known is not None and axis not in axes_known:
            widths.append((0, 0))
            continue
        # The pads of this axis: those whose axis it is (masked sums over the pads).
        hit: Any = (
            np.asarray([a == axis for a in axes_known], np.int32)
            if axes_known is not None
            else mb.cast(x=mb.equal(x=axes, y=np.int32(axis)), dtype="int32")
        )
        pair = []
        for half in range(2):
            part = mb.slice_by_index(
                x=pads if pads is not None else ctx.make_constant(np.asarray(pads_known, np.int32)),
                begin=[half * per_axis],
                end=[(half + 1) * per_axis],
            )
            pair.append(mb.reduce_sum(x=mb.mul(x=part, y=hit), axes=[0], keep_dims=False))
        widths.append((pair[0], pair[1]))
    return widths


def pad_by_gathers(ctx: ExportContext, mode: str) -> Any:
    """ONNX Pad (opset 11 on) of input 0, as gathers along each padded axis."""
    mb = ctx.mb
    dims = ctx.input_shape(0)
    if dims is None or any(d is None for d in dims):
        raise ctx.error(f"mode={mode} with pads at run time on an input of unknown shape")
    lengths = [int(d or 0) for d in dims]
    rank = len(lengths)
    shape = ctx.node.outputs[0].shape
    declared = (
        [d if isinstance(d, int) else None for d in shape]
        if shape is not None and len(shape) == rank
        else [None] * rank
    )
    fill: Any = None
    if mode == "constant":
        fill = _fill_value(ctx)
    x = ctx.input(0)
    for axis, ((begin, end), n) in enumerate(zip(_widths(ctx, rank), lengths, strict=True)):
        if isinstance(begin, int) and isinstance(end, int) and begin == end == 0:
            continue
        if n == 0:
            raise ctx.error(f"mode={mode} on an empty axis {axis}")
        if isinstance(begin, int) and isinstance(end, int):
            source: Any = ctx.make_constant(np.arange(-begin, n + end, dtype=np.int32))
        elif declared[axis] is not None:
            counting = np.arange(int(declared[axis] or 0), dtype=np.int32)
            source = mb.sub(x=counting, y=begin)
        else:
            source = mb.range_1d(
                start=mb.sub(x=np.int32(0), y=begin), end=mb.add(x=end, y=np.int32(n)), step=1
            )
        positions = _fold(ctx, source, n, mode)
        gathered = mb.gather(x=x, indices=positions, axis=axis)
        if mode == "constant":
            inside = mb.logical_and(
                x=mb.greater_equal(x=source, y=np.int32(0)), y=mb.less(x=source, y=np.int32(n))
            )
            if axis < rank - 1:
                inside = mb.expand_dims(x=inside, axes=list(range(1, rank - axis)))
            gathered = mb.select(cond=inside, a=gathered, b=fill)
        x = gathered
    return x if x is not ctx.input(0) else mb.identity(x=x)


def _fill_value(ctx: ExportContext) -> Any:
    if not ctx.has_input(2):
        return scalar_like(ctx, 0.0)
    known = ctx.constant_input(2)
    if known is not None:
        return scalar_like(ctx, float(known.reshape(-1)[0]) if known.size else 0.0)
    value = ctx.input(2)
    rank = len(ctx.input_shape(2) or ())
    return ctx.mb.reshape(x=value, shape=np.array([], np.int32)) if rank else value


def _fold(ctx: ExportContext, source: Any, n: int, mode: str) -> Any:
    """Input positions in ``[0, n)`` that output positions reading ``source`` take."""
    mb = ctx.mb
    if mode in ("constant", "edge"):
        return mb.minimum(x=mb.maximum(x=source, y=np.int32(0)), y=np.int32(n - 1))
    if mode == "wrap":
        return mb.mod(x=source, y=np.int32(n))
    if n == 1:
        return mb.mul(x=source, y=np.int32(0))
    period = 2 * (n - 1)
    folded = mb.mod(x=source, y=np.int32(period))
    return mb.select(
        cond=mb.less(x=folded, y=np.int32(n)), a=folded, b=mb.sub(x=np.int32(period), y=folded)
    )
