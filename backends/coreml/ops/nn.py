"""Neural-network layers: Conv, ConvTranspose, pooling, normalizations, MatMul, Gemm, Dropout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import require_float, scalar_like
from unframe.backends.coreml.registry import ops

_AUTO_PAD = {"SAME_UPPER": "same", "SAME_LOWER": "same_lower", "VALID": "valid"}


def _spatial_rank(ctx: ExportContext) -> int:
    rank = ctx.input_rank(0)
    if rank < 3 or rank > 5:
        raise ctx.error(f"a rank-{rank} input: Core ML convolves and pools 1 to 3 spatial axes")
    return rank - 2


def _padding(ctx: ExportContext, spatial: int) -> dict[str, Any]:
    """MIL's pad_type and pad (``[begin0, end0, begin1, end1, ...]``) from ONNX's attributes."""
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in _AUTO_PAD:
        return {"pad_type": _AUTO_PAD[auto_pad]}
    pads = ctx.attr("pads", None) or [0] * (2 * spatial)
    return {
        "pad_type": "custom",
        "pad": [p for axis in range(spatial) for p in (pads[axis], pads[axis + spatial])],
    }


@ops.register("Conv", since=1)
def conv_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Conv")
    spatial = _spatial_rank(ctx)
    kwargs: dict[str, Any] = {
        "x": ctx.input(0),
        "weight": ctx.input(1),
        "strides": ctx.attr("strides", None) or [1] * spatial,
        "dilations": ctx.attr("dilations", None) or [1] * spatial,
        "groups": int(ctx.attr("group", 1)),
        **_padding(ctx, spatial),
    }
    if ctx.has_input(2) and ctx.constant_input(2) is not None:
        kwargs["bias"] = ctx.input(2)
    y = ctx.mb.conv(**kwargs)
    if ctx.has_input(2) and "bias" not in kwargs:
        # MIL's conv takes a compile-time bias only: one given at run time is added after
        y = ctx.mb.add(x=y, y=_channel_vector(ctx, 2, spatial + 2))
    return [y]


def _transpose_crops(
    ctx: ExportContext, spatial: int, kernel: list[int], strides: list[int], dilations: list[int]
) -> tuple[list[int], list[int]]:
    """How much ConvTranspose crops off the full output's start and end on each axis (negative:
    rows it adds, which hold the bias only), from pads, auto_pad, output_shape, output_padding."""
    in_shape = ctx.input_shape(0)
    output_padding = [int(p) for p in ctx.attr("output_padding", None) or [0] * spatial]
    spatial_in = [int(d) for d in in_shape[2:] if d is not None] if in_shape else []
    full = (
        [
            (d - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1
            for i, d in enumerate(spatial_in)
        ]
        if len(spatial_in) == spatial
        else None
    )
    output_shape = ctx.attr("output_shape", None)
    auto_pad = str(ctx.attr("auto_pad", "NOTSET"))
    if output_shape or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if full is None or in_shape is None:
            raise ctx.error("output_shape or auto_pad SAME on an input of unknown size")
        wanted = (
            [int(d) for d in output_shape][-spatial:]
            if output_shape
            else [int(d) * strides[i] for i, d in enumerate(in_shape[2:])]  # type: ignore[arg-type]
        )
        total = [full[i] + output_padding[i] - wanted[i] for i in range(spatial)]
        if auto_pad == "SAME_UPPER":
            return [t // 2 for t in total], [
                t - t // 2 - output_padding[i] for i, t in enumerate(total)
            ]
        return [t - t // 2 for t in total], [
            t // 2 - output_padding[i] for i, t in enumerate(total)
        ]
    if auto_pad == "VALID":
        pads = [0] * (2 * spatial)
    else:
        pads = [int(p) for p in ctx.attr("pads", None) or [0] * (2 * spatial)]
    # output_padding lengthens the end of each axis: that is cropping less there.
    return pads[:spatial], [pads[spatial + i] - output_padding[i] for i in range(spatial)]


@ops.register("ConvTranspose", since=1)
def conv_transpose_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "ConvTranspose")
    spatial = _spatial_rank(ctx)
    weight_shape = ctx.input_shape(1)
    if weight_shape is None or any(d is None for d in weight_shape):
        raise ctx.error("a weight of unknown shape")
    kernel = [int(k) for k in weight_shape[2:]]  # type: ignore[arg-type]
    strides = [int(s) for s in ctx.attr("strides", None) or [1] * spatial]
    dilations = [int(d) for d in ctx.attr("dilations", None) or [1] * spatial]
    groups = int(ctx.attr("group", 1))
    begin, end = _transpose_crops(ctx, spatial, kernel, strides, dilations)
    mb = ctx.mb
    cropped_begin, cropped_end = [max(b, 0) for b in begin], [max(e, 0) for e in end]
    added = [(max(-b, 0), max(-e, 0)) for b, e in zip(begin, end, strict=True)]
    bias_inside = (
        ctx.has_input(2) and ctx.constant_input(2) is not None and not any(b or e for b, e in added)
    )
    if ctx.constant_input(1) is not None:
        y = mb.conv_transpose(
            x=ctx.input(0),
            weight=ctx.input(1),
            strides=strides,
            dilations=dilations,
            groups=groups,
            pad_type="custom",
            pad=[p for axis in range(spatial) for p in (cropped_begin[axis], cropped_end[axis])],
            **({"bias": ctx.input(2)} if bias_inside else {}),
        )
    else:
        bias_inside = False
        y = _conv_transpose_by_conv(
            ctx, spatial, kernel, strides, dilations, groups, cropped_begin, cropped_end
        )
    if any(b or e for b, e in added):
        # Rows past the full output: no input reaches them, only the bias.
        y = mb.pad(x=y, pad=[0, 0, 0, 0] + [p for pair in added for p in pair], mode="constant")
    if ctx.has_input(2) and not bias_inside:
        y = mb.add(x=y, y=_channel_vector(ctx, 2, spatial + 2))
    return [y]


def _conv_transpose_by_conv(
    ctx: ExportContext,
    spatial: int,
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    groups: int,
    begin: list[int],
    end: list[int],
) -> Any:
    """ConvTranspose with a weight computed at run time (MIL's conv_transpose takes a constant):
    the input spread ``stride`` apart with zeros (a constant conv_transpose of ones), then a conv
    with the weight flipped and its channel axes swapped per group."""
    mb = ctx.mb
    in_shape = ctx.input_shape(0)
    weight_shape = ctx.input_shape(1)
    assert in_shape is not None and weight_shape is not None
    channels_in = in_shape[1]
    if channels_in is None:
        raise ctx.error("an input of unknown channels with a weight computed at run time")
    x = ctx.input(0)
    dtype = {"fp32": np.float32, "fp16": np.float16}[ctx.mil_dtype(ctx.input_dtype(0))]
    if any(s != 1 for s in strides):
        ones = np.ones([int(channels_in), 1] + [1] * spatial, dtype)
        x = mb.conv_transpose(
            x=x, weight=ctx.make_constant(ones), strides=strides, groups=int(channels_in)
        )
    per_group_out = int(weight_shape[1])  # type: ignore[arg-type]
    per_group_in = int(channels_in) // groups
    if groups == 1:
        weight = mb.transpose(x=ctx.input(1), perm=[1, 0] + list(range(2, 2 + spatial)))
    elif spatial < 3:
        weight = mb.reshape(x=ctx.input(1), shape=[groups, per_group_in, per_group_out] + kernel)
        weight = mb.transpose(x=weight, perm=[0, 2, 1] + list(range(3, 3 + spatial)))
        weight = mb.reshape(x=weight, shape=[groups * per_group_out, per_group_in] + kernel)
    else:
        raise ctx.error("3-D groups with a weight computed at run time (a rank-6 regrouping)")
    weight = mb.reverse(x=weight, axes=list(range(2, 2 + spatial)))
    if any(d != 1 for d in dilations):
        # MIL convolves run-time weights undilated: the weight spread apart with zeros instead.
        ones = np.ones([per_group_in, 1] + [1] * spatial, dtype)
        weight = mb.conv_transpose(
            x=weight, weight=ctx.make_constant(ones), strides=dilations, groups=per_group_in
        )
    reach = [(kernel[i] - 1) * dilations[i] for i in range(spatial)]
    pads = [(reach[i] - begin[i], reach[i] - end[i]) for i in range(spatial)]
    if any(p < 0 for pair in pads for p in pair):
        raise ctx.error("pads wider than the kernel's reach with a weight computed at run time")
    return mb.conv(
        x=x,
        weight=weight,
        groups=groups,
        pad_type="custom",
        pad=[p for pair in pads for p in pair],
    )


def _pool(ctx: ExportContext, op: str, x: Any = None, **extra: Any) -> list[Any]:
    """MIL's ``op`` over input 0 (or ``x``, input 0 already cast to float)."""
    if x is None:
        require_float(ctx, op)
        x = ctx.input(0)
    spatial = _spatial_rank(ctx)
    if ctx.output_used(1):
        raise ctx.error("the Indices output: Core ML's max_pool gives values only")
    kernel = ctx.attr("kernel_shape")
    if any(d != 1 for d in ctx.attr("dilations", None) or []):
        return [
            _dilated_pool(
                ctx, "max" if op == "max_pool" else "avg", spatial, [int(k) for k in kernel], x
            )
        ]
    return [
        getattr(ctx.mb, op)(
            x=x,
            kernel_sizes=kernel,
            strides=ctx.attr("strides", None) or [1] * spatial,
            ceil_mode=bool(ctx.attr("ceil_mode", 0)),
            **_padding(ctx, spatial),
            **extra,
        )
    ]


def _pool_geometry(
    ctx: ExportContext,
    sizes: list[int],
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
) -> tuple[list[int], list[int], list[int], list[int]]:
    """Each spatial axis's pad before, pad after, ceil_mode's overhang past that and output size,
    by ONNX's rules for pads, auto_pad and ceil_mode."""
    spatial = len(sizes)
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    auto_pad = str(ctx.attr("auto_pad", "NOTSET"))
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        outs = [-(-n // s) for n, s in zip(sizes, strides, strict=True)]
        totals = [
            max((o - 1) * s + span - n, 0)
            for o, s, span, n in zip(outs, strides, spans, sizes, strict=True)
        ]
        before = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in totals]
        after = [t - b for t, b in zip(totals, before, strict=True)]
    else:
        pads = [0] * (2 * spatial)
        if auto_pad != "VALID":
            pads = [int(p) for p in ctx.attr("pads", None) or pads]
        before, after = pads[:spatial], pads[spatial:]
        ceil = bool(ctx.attr("ceil_mode", 0))
        outs = []
        for i in range(spatial):
            room = sizes[i] + before[i] + after[i] - spans[i]
            out = (-(-room // strides[i]) if ceil else room // strides[i]) + 1
            # a last window starting in the end padding is dropped (as onnxruntime and torch do)
            if ceil and (out - 1) * strides[i] >= sizes[i] + before[i]:
                out -= 1
            outs.append(out)
    overhang = [
        max((o - 1) * s + span - (n + b + a), 0)
        for o, s, span, n, b, a in zip(outs, strides, spans, sizes, before, after, strict=True)
    ]
    return before, after, overhang, outs


def _dilated_pool(
    ctx: ExportContext, kind: str, spatial: int, kernel: list[int], x: Any = None
) -> Any:
    """MIL pools have no dilations: the window's elements are gathered as strided slices of the
    padded input (one per kernel offset) and combined by maximum or sum; the average divides by
    each window's count, computed here from the padding (the input's spatial sizes must be known).
    ``kind``: "max", "avg", "sum" (LpPool's) or "argmax" (the maximum and MaxPool's Indices: the
    flat index of each window's first maximum, from constants of each offset's indices)."""
    shape = ctx.input_shape(0)
    if shape is None or any(d is None for d in shape[2:]):
        raise ctx.error("dilated pooling over spatial sizes unknown at conversion time")
    sizes = [int(d) for d in shape[2:]]  # type: ignore[arg-type]
    strides = [int(s) for s in ctx.attr("strides", None) or [1] * spatial]
    dilations = [int(d) for d in ctx.attr("dilations", None) or [1] * spatial]
    before, declared_after, overhang, outs = _pool_geometry(ctx, sizes, kernel, strides, dilations)
    after = [a + h for a, h in zip(declared_after, overhang, strict=True)]
    mb = ctx.mb
    x = ctx.input(0) if x is None else x
    # MIL's type check wants pad's value and the divisor in x's type (integers arrive as float32)
    float_type = np.float16 if ctx.mil_dtype(ctx.input_dtype(0)) == "fp16" else np.float32
    if any(before) or any(after):
        x = mb.pad(
            x=x,
            pad=[0, 0, 0, 0] + [p for b, a in zip(before, after, strict=True) for p in (b, a)],
            mode="constant",
            constant_val=float_type(float("-inf") if kind in ("max", "argmax") else 0.0),
        )
    combined = best = None
    for offsets in np.ndindex(*kernel):
        starts = [int(o) * d for o, d in zip(offsets, dilations, strict=True)]
        window = mb.slice_by_index(
            x=x,
            begin=[0, 0, *starts],
            end=[
                0,
                0,
                *[b + (o - 1) * s + 1 for b, o, s in zip(starts, outs, strides, strict=True)],
            ],
            stride=[1, 1, *strides],
            begin_mask=[True, True] + [False] * spatial,
            end_mask=[True, True] + [False] * spatial,
        )
        if kind == "argmax":
            here = ctx.make_constant(
                _flat_indices(ctx, shape, offsets, before, strides, dilations, outs), "indices"
            )
            if combined is not None:
                # strictly greater: the first maximum keeps its index, as onnxruntime's does
                better = mb.greater(x=window, y=combined)
                here = mb.select(cond=better, a=here, b=best)
                window = mb.select(cond=better, a=window, b=combined)
            best = here
        elif combined is not None:
            window = (mb.maximum if kind == "max" else mb.add)(x=combined, y=window)
        combined = window
    if kind == "argmax":
        return combined, best
    if kind != "avg":
        return combined
    include_pad = bool(int(ctx.attr("count_include_pad", 0)))
    counts = np.ones(outs, np.float64)
    for i in range(spatial):
        padded = before[i] + sizes[i] + after[i]
        counted = np.zeros(padded)
        # count_include_pad counts the declared padding, never ceil_mode's overhang
        low, high = (0, padded - overhang[i]) if include_pad else (before[i], before[i] + sizes[i])
        counted[low:high] = 1
        taps = np.arange(outs[i])[:, None] * strides[i] + np.arange(kernel[i]) * dilations[i]
        per_output = counted[taps].sum(axis=1)
        counts = counts * per_output.reshape([-1] + [1] * (spatial - 1 - i))
    divisor = float_type
    return mb.real_div(x=combined, y=ctx.make_constant(counts.astype(divisor), "window_counts"))


def _flat_indices(
    ctx: ExportContext,
    shape: tuple[int | None, ...],
    offsets: tuple[int, ...],
    before: list[int],
    strides: list[int],
    dilations: list[int],
    outs: list[int],
) -> np.ndarray:
    """MaxPool's Indices of one kernel offset's elements: flat positions in the input, spatial
    axes row-major (storage_order 0) or column-major (1), after batch and channel."""
    if shape[0] is None or shape[1] is None:
        raise ctx.error("the Indices output of an input whose batch or channels are unknown")
    dims = [int(d) for d in shape]  # type: ignore[arg-type]
    spatial = dims[2:]
    order = (
        range(len(spatial)) if int(ctx.attr("storage_order", 0)) else reversed(range(len(spatial)))
    )
    steps = [0] * len(spatial)
    step = 1
    for axis in order:
        steps[axis] = step
        step *= spatial[axis]
    flat = np.arange(dims[0] * dims[1]).reshape(dims[:2] + [1] * len(spatial)) * step
    for axis, size in enumerate(outs):
        position = np.arange(size) * strides[axis] + offsets[axis] * dilations[axis] - before[axis]
        view = [1] * len(dims)
        view[2 + axis] = size
        flat = flat + position.reshape(view) * steps[axis]
    return flat.astype(np.int32)


@ops.register("MaxPool", since=8)
def max_pool_v8(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    if ctx.output_used(1):
        require_float(ctx, "MaxPool")
        spatial = _spatial_rank(ctx)
        kernel = [int(k) for k in ctx.attr("kernel_shape")]
        return list(_dilated_pool(ctx, "argmax", spatial, kernel))
    if ctx.input_dtype(0) in _EXACT_IN_FLOAT32:
        # Core ML pools floats only; these integers (held as int32) are exact in float32
        (y,) = _pool(ctx, "max_pool", ctx.mb.cast(x=ctx.input(0), dtype="fp32"))
        return [ctx.mb.cast(x=y, dtype="int32")]
    return _pool(ctx, "max_pool")


_EXACT_IN_FLOAT32 = {ir.DataType.INT8, ir.DataType.UINT8, ir.DataType.INT16, ir.DataType.UINT16}


@ops.register("AveragePool", since=7)
def average_pool_v7(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    exclude = not int(ctx.attr("count_include_pad", 0))
    return _pool(ctx, "avg_pool", exclude_padding_from_average=exclude)


@ops.register("LpPool", since=11)
def lp_pool_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """(sum over the window of |x|^p)^(1/p): an average pool counting the zero padding, times the
    window's size, is that sum; with dilations or ceil_mode (whose partial windows count fewer)
    the window's elements are summed one kernel offset at a time."""
    require_float(ctx, "LpPool")
    mb = ctx.mb
    p = float(ctx.attr("p", 2))
    powered = mb.pow(x=mb.abs(x=ctx.input(0)), y=scalar_like(ctx, p))
    window = float(np.prod([int(k) for k in ctx.attr("kernel_shape")]))
    spatial = _spatial_rank(ctx)
    if int(ctx.attr("ceil_mode", 0)) or any(d != 1 for d in ctx.attr("dilations", None) or []):
        kernel = [int(k) for k in ctx.attr("kernel_shape")]
        total = _dilated_pool(ctx, "sum", spatial, kernel, powered)
        return [mb.pow(x=total, y=scalar_like(ctx, 1.0 / p))]
    average = mb.avg_pool(
        x=powered,
        kernel_sizes=ctx.attr("kernel_shape"),
        strides=ctx.attr("strides", None) or [1] * spatial,
        exclude_padding_from_average=False,
        **_padding(ctx, spatial),
    )
    total = mb.mul(x=average, y=scalar_like(ctx, window))
    return [mb.pow(x=total, y=scalar_like(ctx, 1.0 / p))]


def _global(ctx: ExportContext, op: str) -> list[Any]:
    require_float(ctx, op)
    rank = ctx.input_rank(0)
    return [getattr(ctx.mb, op)(x=ctx.input(0), axes=list(range(2, rank)), keep_dims=True)]


@ops.register("GlobalAveragePool", since=1)
def global_average_pool_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _global(ctx, "reduce_mean")


@ops.register("GlobalMaxPool", since=1)
def global_max_pool_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _global(ctx, "reduce_max")


def _channel_vector(ctx: ExportContext, index: int, rank: int) -> Any:
    """Input ``index`` (per channel) shaped to broadcast over a rank-``rank`` NC... tensor."""
    return ctx.mb.reshape(x=ctx.input(index), shape=[-1] + [1] * (rank - 2))


@ops.register("BatchNormalization", since=9)
def batch_normalization_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "BatchNormalization")
    epsilon = float(ctx.attr("epsilon"))
    rank = ctx.input_rank(0)
    if int(ctx.attr("training_mode", 0)):
        return _batch_norm_training(ctx, epsilon, rank)
    params = [ctx.constant_input(i) for i in range(1, 5)]
    if rank in (3, 4, 5) and all(p is not None for p in params):
        scale, bias, mean, var = (ctx.input(i) for i in range(1, 5))
        y = ctx.mb.batch_norm(
            x=ctx.input(0), mean=mean, variance=var, gamma=scale, beta=bias, epsilon=epsilon
        )
        return [y]
    mb = ctx.mb
    scale, bias, mean, var = (_channel_vector(ctx, i, rank) for i in range(1, 5))
    spread = mb.sqrt(x=mb.add(x=var, y=scalar_like(ctx, epsilon)))
    normalized = mb.real_div(x=mb.sub(x=ctx.input(0), y=mean), y=spread)
    return [mb.add(x=mb.mul(x=normalized, y=scale), y=bias)]


def _batch_norm_training(ctx: ExportContext, epsilon: float, rank: int) -> list[Any]:
    """training_mode=1: normalized by the batch's own mean and (population) variance over every
    axis but channels; the running statistics blend the given ones with them by momentum."""
    mb = ctx.mb
    x = ctx.input(0)
    axes = [0, *range(2, rank)]
    mean = mb.reduce_mean(x=x, axes=axes, keep_dims=True)
    centered = mb.sub(x=x, y=mean)
    variance = mb.reduce_mean(x=mb.mul(x=centered, y=centered), axes=axes, keep_dims=True)
    spread = mb.sqrt(x=mb.add(x=variance, y=scalar_like(ctx, epsilon)))
    scale, bias = (_channel_vector(ctx, i, rank) for i in (1, 2))
    y = mb.add(x=mb.mul(x=mb.real_div(x=centered, y=spread), y=scale), y=bias)
    outputs = [y]
    momentum = float(ctx.attr("momentum", 0.9))
    for index, batch in ((3, mean), (4, variance)):
        if ctx.output_used(index - 2):
            given = mb.mul(x=ctx.input(index), y=scalar_like(ctx, momentum))
            fresh = mb.mul(x=mb.reshape(x=batch, shape=[-1]), y=scalar_like(ctx, 1.0 - momentum))
            outputs.append(mb.add(x=given, y=fresh))
        else:
            outputs.append(None)
    while outputs and outputs[-1] is None:
        outputs.pop()
    return outputs


@ops.register("InstanceNormalization", since=6)
def instance_normalization_v6(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "InstanceNormalization")
    rank = ctx.input_rank(0)
    epsilon = float(ctx.attr("epsilon"))
    if rank in (3, 4) and ctx.constant_input(1) is not None and ctx.constant_input(2) is not None:
        return [
            ctx.mb.instance_norm(
                x=ctx.input(0), gamma=ctx.input(1), beta=ctx.input(2), epsilon=epsilon
            )
        ]
    # instance_norm takes rank 3 or 4 and constant parameters: the formula otherwise.
    normalized = _normalize(ctx, ctx.input(0), list(range(2, rank)), epsilon)
    scale, bias = _channel_vector(ctx, 1, rank), _channel_vector(ctx, 2, rank)
    return [ctx.mb.add(x=ctx.mb.mul(x=normalized, y=scale), y=bias)]


def _normalize(ctx: ExportContext, x: Any, axes: list[int], epsilon: float) -> Any:
    """(x - mean) / sqrt(variance + epsilon) over ``axes`` (population variance)."""
    mb = ctx.mb
    centered = mb.sub(x=x, y=mb.reduce_mean(x=x, axes=axes, keep_dims=True))
    variance = mb.reduce_mean(x=mb.mul(x=centered, y=centered), axes=axes, keep_dims=True)
    spread = mb.sqrt(x=mb.add(x=variance, y=scalar_like(ctx, epsilon)))
    return mb.real_div(x=centered, y=spread)


def _group_normalization(ctx: ExportContext, per_group: bool) -> Sequence[Any]:
    require_float(ctx, "GroupNormalization")
    if int(ctx.attr("stash_type", 1)) != 1:
        raise ctx.error("stash_type other than float32")
    shape = ctx.input_shape(0)
    if shape is None or len(shape) < 3 or any(d is None for d in shape[1:]):
        raise ctx.error("an input of unknown channels or spatial size")
    rank = len(shape)
    channels = int(shape[1])  # type: ignore[arg-type]
    groups = int(ctx.attr("num_groups"))
    if groups <= 0 or channels % groups:
        raise ctx.error(f"num_groups={groups} does not divide the {channels} channels")
    mb = ctx.mb
    x = ctx.input(0)
    if shape[0] is not None:
        grouped = mb.reshape(x=x, shape=[int(shape[0]), groups, -1])
    else:
        batch = mb.slice_by_size(x=mb.shape(x=x), begin=[0], size=[1])
        grouped_shape = mb.concat(values=[batch, np.array([groups, -1], np.int32)], axis=0)
        grouped = mb.reshape(x=x, shape=grouped_shape)
    normalized = _normalize(ctx, grouped, [2], float(ctx.attr("epsilon")))
    y = mb.reshape(x=normalized, shape=mb.shape(x=x))
    scale, bias = (
        _group_vector(ctx, i, groups, channels, rank)
        if per_group
        else _channel_vector(ctx, i, rank)
        for i in (1, 2)
    )
    return [mb.add(x=mb.mul(x=y, y=scale), y=bias)]


def _group_vector(ctx: ExportContext, index: int, groups: int, channels: int, rank: int) -> Any:
    """Opset 18's per-group parameter repeated over each group's channels, shaped (C, 1, ...)."""
    mb = ctx.mb
    per_channel = mb.tile(
        x=mb.reshape(x=ctx.input(index), shape=[groups, 1]), reps=[1, channels // groups]
    )
    return mb.reshape(x=per_channel, shape=[channels] + [1] * (rank - 2))


@ops.register("GroupNormalization", since=18)
def group_normalization_v18(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _group_normalization(ctx, per_group=True)


@ops.register("GroupNormalization", since=21)
def group_normalization_v21(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _group_normalization(ctx, per_group=False)


@ops.register("LRN", since=1)
def lrn_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """x / (bias + alpha / size * sum of squares over ``size`` channels) ^ beta, as ONNX."""
    require_float(ctx, "LRN")
    if ctx.input_rank(0) != 4:
        raise ctx.error("a rank other than 4: Core ML's window runs over dim -3, ONNX's over dim 1")
    return [
        ctx.mb.local_response_norm(
            x=ctx.input(0),
            size=int(ctx.attr("size")),
            alpha=float(ctx.attr("alpha", 0.0001)),
            beta=float(ctx.attr("beta", 0.75)),
            k=float(ctx.attr("bias", 1.0)),
        )
    ]


@ops.register("LayerNormalization", since=17)
def layer_normalization_v17(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "LayerNormalization")
    if int(ctx.attr("stash_type", 1)) != 1:
        raise ctx.error("stash_type other than float32")
    rank = ctx.input_rank(0)
    axis = int(ctx.attr("axis"))
    axis = axis + rank if axis < 0 else axis
    axes = list(range(axis, rank))
    mb = ctx.mb
    statistics = _layer_statistics(ctx, axes) if ctx.output_used(1) or ctx.output_used(2) else []
    scale, bias = ctx.constant_input(1), ctx.constant_input(2) if ctx.has_input(2) else None
    normalized_shape = ctx.input_shape(0)[axis:]  # type: ignore[index]
    if (
        scale is not None
        and tuple(scale.shape) == normalized_shape
        and (not ctx.has_input(2) or (bias is not None and tuple(bias.shape) == normalized_shape))
    ):
        kwargs: dict[str, Any] = {"gamma": ctx.input(1)}
        if ctx.has_input(2):
            kwargs["beta"] = ctx.input(2)
        y = mb.layer_norm(x=ctx.input(0), axes=axes, epsilon=float(ctx.attr("epsilon")), **kwargs)
        return [y, *statistics]
    # Scale or bias broadcast from a smaller shape, or computed at run time: the formula.
    y = mb.layer_norm(x=ctx.input(0), axes=axes, epsilon=float(ctx.attr("epsilon")))
    y = mb.mul(x=y, y=ctx.input(1))
    return [mb.add(x=y, y=ctx.input(2)) if ctx.has_input(2) else y, *statistics]


def _layer_statistics(ctx: ExportContext, axes: list[int]) -> list[Any]:
    """LayerNormalization's Mean and InvStdDev outputs (kept dims), which layer_norm does not give."""
    mb = ctx.mb
    x = ctx.input(0)
    mean = mb.reduce_mean(x=x, axes=axes, keep_dims=True)
    centered = mb.sub(x=x, y=mean)
    variance = mb.reduce_mean(x=mb.mul(x=centered, y=centered), axes=axes, keep_dims=True)
    epsilon = scalar_like(ctx, float(ctx.attr("epsilon")))
    return [mean, mb.rsqrt(x=mb.add(x=variance, y=epsilon), epsilon=0.0)]


@ops.register("MatMul", since=1)
def matmul_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    mb = ctx.mb
    x, y = ctx.input(0), ctx.input(1)
    if ctx.input_rank(0) != 1 and ctx.input_rank(1) != 1:
        return [mb.matmul(x=x, y=y)]
    # numpy's rule for vectors (a row on the left, a column on the right, the unit axis dropped
    # after), spelled out: MIL's type inference fails on a vector times a vector.
    dropped = []
    if ctx.input_rank(0) == 1:
        x = mb.expand_dims(x=x, axes=[0])
        dropped.append(-2)
    if ctx.input_rank(1) == 1:
        y = mb.expand_dims(x=y, axes=[-1])
        dropped.append(-1)
    return [mb.squeeze(x=mb.matmul(x=x, y=y), axes=dropped)]


@ops.register("Gemm", since=7)  # 7 to 10 require C, which this reads the same way
@ops.register("Gemm", since=11)
def gemm_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Gemm")
    mb = ctx.mb
    trans_a, trans_b = bool(ctx.attr("transA", 0)), bool(ctx.attr("transB", 0))
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    weight, bias = ctx.constant_input(1), ctx.constant_input(2) if ctx.has_input(2) else None
    if (
        trans_b
        and not trans_a
        and alpha == 1.0
        and weight is not None
        and (
            not ctx.has_input(2)
            or (beta == 1.0 and bias is not None and bias.shape == (weight.shape[0],))
        )
    ):
        # The fully connected layer: MIL's linear takes the weight as ONNX stores it.
        kwargs = {"bias": ctx.input(2)} if ctx.has_input(2) else {}
        return [mb.linear(x=ctx.input(0), weight=ctx.input(1), **kwargs)]
    y = mb.matmul(x=ctx.input(0), y=ctx.input(1), transpose_x=trans_a, transpose_y=trans_b)
    if alpha != 1.0:
        y = mb.mul(x=y, y=scalar_like(ctx, alpha))
    if ctx.has_input(2):
        c = ctx.input(2)
        if beta != 1.0:
            c = mb.mul(x=c, y=scalar_like(ctx, beta, 2))
        y = mb.add(x=y, y=c)
    return [y]


@ops.register("Dropout", since=7)
def dropout_v7(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    training = ctx.constant_input(2)
    if ctx.has_input(2) and (training is None or bool(training.reshape(()))):
        raise ctx.error("training_mode true or computed at run time: Core ML runs inference only")
    if not ctx.output_used(1):
        return [ctx.input(0)]
    # In inference every element is kept: the mask is all true.
    shape = ctx.input_shape(0)
    if shape is not None and all(d is not None for d in shape):
        mask = ctx.make_constant(np.ones([int(d) for d in shape], np.bool_))  # type: ignore[arg-type]
    else:
        mask = ctx.mb.fill(shape=ctx.mb.shape(x=ctx.input(0)), value=True)
    return [ctx.input(0), mask]
