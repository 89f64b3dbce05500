"""Padding and cropping: Pad in every mode and rank, CenterCropPad, with constant or run-time sizes."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.context import ExportContext
from unframe.backends.caffe2.ops import _runtime as runtime
from unframe.backends.caffe2.ops._common import (
    attr_float,
    attr_ints,
    attr_str,
    normalize_axis,
    required,
)
from unframe.backends.caffe2.registry import ops


def _source_indices(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each padded position along one axis, the input position it copies."""
    positions = np.arange(-before, size + after)
    if mode == "edge":
        return np.clip(positions, 0, size - 1)
    if mode == "wrap":
        return np.mod(positions, size)
    period = 2 * (size - 1)  # reflect, without repeating the border
    folded = np.mod(positions, period) if period else np.zeros_like(positions)
    return np.where(folded < size, folded, period - folded)


def _general_pad(
    node: ir.Node, ctx: ExportContext, pads: list[int], mode: str, value: float
) -> None:
    """Any rank and axis: Slice for negative pads, then per axis a Gather (edge, reflect, wrap)
    or a Concat with constant blocks (constant)."""
    shape = list(ctx.need_shape(node.inputs[0], "to pad it"))
    rank = len(shape)
    blob = ctx.input(0)
    begins, ends = (
        [max(-p, 0) for p in pads[:rank]],
        [s + min(p, 0) for s, p in zip(shape, pads[rank:], strict=True)],
    )
    if any(p < 0 for p in pads):
        blob = ctx.temp("Slice", [blob], "cropped", starts=begins, ends=ends)
        shape = [e - b for b, e in zip(begins, ends, strict=True)]
    dtype = (ctx.dtype(node.inputs[0]) or ir.DataType.FLOAT).numpy()
    for axis in range(rank):
        before, after = max(pads[axis], 0), max(pads[rank + axis], 0)
        if not before and not after:
            continue
        if mode == "constant":
            parts = []
            for count in (before, after):
                block = list(shape)
                block[axis] = count
                parts.append(
                    ctx.make_constant(np.full(block, value, dtype=dtype), "fill") if count else None
                )
            inputs = [p for p in (parts[0], blob, parts[1]) if p is not None]
            joined = ctx.fresh("padded")
            ctx.emit("Concat", inputs, [joined, ctx.fresh("split_info")], axis=axis)
            blob = joined
        else:
            if shape[axis] == 0 or (mode == "reflect" and max(before, after) >= shape[axis]):
                raise ctx.error(f"{mode} padding wider than the input has no exact Caffe2 form")
            indices = _source_indices(shape[axis], before, after, mode).astype(np.int64)
            blob = ctx.temp(
                "Gather", [blob, ctx.make_constant(indices, "pad_indices")], "padded", axis=axis
            )
        shape[axis] += before + after
    ctx.emit("Copy", [blob], [ctx.output(node)])


def _pad(node: ir.Node, ctx: ExportContext, pads: list[int], mode: str, value: float) -> None:
    rank = len(pads) // 2
    begins, ends = pads[:rank], pads[rank:]
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise ctx.error(f"mode={mode!r} has no Caffe2 equivalent")
    image = mode != "wrap" and rank == 4 and not any(begins[:2]) and not any(ends[:2])
    if (
        not image
        or any(p < 0 for p in pads)
        or not (ctx.dtype(node.inputs[0]) or ir.DataType.FLOAT).is_floating_point()
    ):
        # PadImage pads the spatial dims of float NCHW images; the rest is built from slices.
        _general_pad(node, ctx, pads, mode, value)
        return
    ctx.emit(
        "PadImage", [ctx.input(0)], [ctx.output(node)], pad_t=begins[2], pad_l=begins[3],
        pad_b=ends[2], pad_r=ends[3], mode=mode, value=value, order="NCHW",
    )  # fmt: skip


@ops.register("Pad", since=2, until=10)
def pad_v2(node: ir.Node, ctx: ExportContext) -> None:
    pads = attr_ints(node, "pads") or []
    _pad(node, ctx, pads, attr_str(node, "mode", "constant"), attr_float(node, "value", 0.0))


@ops.register("Pad", since=11)
def pad_v11(node: ir.Node, ctx: ExportContext) -> None:
    value_known = not ctx.has_input(2) or ctx.known_value(node.inputs[2]) is not None
    axes_known = not ctx.has_input(3) or ctx.known_value(node.inputs[3]) is not None
    if ctx.known_value(node.inputs[1]) is None or not value_known or not axes_known:
        _runtime_pad(node, ctx)
        return
    pads = [int(p) for p in ctx.need_known_value(node.inputs[1], "the pads").reshape(-1)]
    value = 0.0
    if ctx.has_input(2):
        value = float(ctx.need_known_value(node.inputs[2], "the constant value"))
    if ctx.has_input(3):
        rank = ctx.need_rank(node.inputs[0])
        axes = [
            normalize_axis(ctx, int(a), rank)
            for a in ctx.need_known_value(node.inputs[3], "the axes")
        ]
        full = [0] * (2 * rank)
        for i, axis in enumerate(axes):
            full[axis], full[rank + axis] = pads[i], pads[len(axes) + i]
        pads = full
    _pad(node, ctx, pads, attr_str(node, "mode", "constant"), value)


def _runtime_pad(node: ir.Node, ctx: ExportContext) -> None:
    """Pad with run-time pads, value or axes: per axis, gather positions -before .. dim + after."""
    x = node.inputs[0]
    shape = ctx.need_shape(x, "to pad it")
    rank = len(shape)
    mode = attr_str(node, "mode", "constant")
    axes = runtime.axes_input(ctx, node, 3, rank)
    count = ctx.need_shape(node.inputs[1], "for the number of pads")[0] // 2
    pads = runtime.int64(ctx, node.inputs[1])  # type: ignore[arg-type]
    befores = ctx.temp("Slice", [pads], "befores", starts=[0], ends=[count])
    afters = ctx.temp("Slice", [pads], "afters", starts=[count], ends=[2 * count])
    fill = None
    if mode == "constant":
        if ctx.has_input(2):
            fill = runtime.scalar_of(ctx, node.inputs[2])  # type: ignore[arg-type]
        else:
            fill = ctx.scalar(0, x)
    blob = ctx.input(0)
    for axis in axes if isinstance(axes, list) else range(rank):
        before = runtime.axis_param(ctx, befores, axes, rank, axis, 0)
        after = runtime.axis_param(ctx, afters, axes, rank, axis, 0)
        start = ctx.temp("Sub", [runtime.const64(ctx, 0), before], "start")
        stop = ctx.temp("Add", [runtime.const64(ctx, shape[axis]), after], "stop")
        blob = runtime.window(ctx, blob, rank, axis, shape[axis], (start, stop), mode, fill)
    ctx.emit("Copy", [blob], [ctx.output(node)])


@ops.register("CenterCropPad", since=18)
def center_crop_pad_v18(node: ir.Node, ctx: ExportContext) -> None:
    shape = ctx.need_shape(node.inputs[0], "to crop or pad it")
    axes = [
        normalize_axis(ctx, a, len(shape)) for a in (attr_ints(node, "axes") or range(len(shape)))
    ]
    if ctx.known_value(node.inputs[1]) is None:
        _runtime_center_crop_pad(node, ctx, shape, axes)
        return
    target = [int(v) for v in ctx.need_known_value(node.inputs[1], "the target shape").reshape(-1)]
    starts, ends = [0] * len(shape), list(shape)
    pads: dict[int, tuple[int, int]] = {}
    for axis, size in zip(axes, target, strict=True):
        dim = shape[axis]
        if size < dim:
            starts[axis] = (dim - size) // 2
            ends[axis] = starts[axis] + size
        elif size > dim:
            before = (size - dim) // 2
            pads[axis] = (before, size - dim - before)
    blob = ctx.temp("Slice", [ctx.input(0)], "cropped", starts=starts, ends=ends)
    current = [e - s for s, e in zip(starts, ends, strict=True)]
    dtype = (ctx.dtype(node.inputs[0]) or ir.DataType.FLOAT).numpy()
    for axis, (before, after) in pads.items():
        parts = []
        for count in (before, after):
            block = list(current)
            block[axis] = count
            parts.append(
                ctx.make_constant(np.zeros(block, dtype=dtype), "zeros") if count else None
            )
        inputs = [p for p in (parts[0], blob, parts[1]) if p is not None]
        blob_out = ctx.fresh("padded")
        ctx.emit("Concat", inputs, [blob_out, ctx.fresh("split_info")], axis=axis)
        blob = blob_out
        current[axis] += before + after
    ctx.emit("Copy", [blob], [ctx.output(node)])


def _runtime_center_crop_pad(
    node: ir.Node, ctx: ExportContext, shape: tuple[int, ...], axes: list[int]
) -> None:
    """A run-time target size per axis: read positions start .. start + size - 1, with start
    (dim - size) // 2 when cropping and -((size - dim) // 2) when padding (zeros outside)."""
    sizes = runtime.int64(ctx, required(ctx, node, 1))
    blob = ctx.input(0)
    two = runtime.const64(ctx, 2)
    zero = ctx.scalar(0, node.inputs[0])
    for index, axis in enumerate(axes):
        size = ctx.temp("Gather", [sizes, runtime.const64(ctx, index)], "size")
        dim = runtime.const64(ctx, shape[axis])
        # Both halvings see a non-negative difference where they are chosen (Div truncates).
        crop = ctx.temp("Div", [ctx.temp("Sub", [dim, size]), two], "crop")
        pad = ctx.temp("Div", [ctx.temp("Sub", [size, dim]), two], "pad")
        cropping = ctx.temp("LT", [size, dim], "cropping")
        start = ctx.temp("Where", [cropping, crop, ctx.temp("Negative", [pad])], "start")
        stop = ctx.temp("Add", [start, size], "stop")
        rank = len(shape)
        blob = runtime.window(ctx, blob, rank, axis, shape[axis], (start, stop), "constant", zero)
    ctx.emit("Copy", [blob], [ctx.output(node)])
