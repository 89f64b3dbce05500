"""ONNX ops with no Caffe2 operator, built exactly from ones that exist (static shapes).

Index arithmetic (flat positions, strides) is computed here from the static shapes, so that the net
only gathers, scatters, slices and concatenates.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.export.context import ExportContext, caffe2_dtype
from unframe.backends.caffe2.export.ops import _runtime as runtime
from unframe.backends.caffe2.export.ops import reduce
from unframe.backends.caffe2.export.ops._common import (
    NUMERIC,
    SCATTER_ASSIGN_TYPES,
    attr_float,
    attr_int,
    attr_ints,
    attr_str,
    carried,
    carried_back,
    cast,
    expand,
    normalize_axis,
    required,
    reshape,
    transpose,
)
from unframe.backends.caffe2.export.registry import ops


def _strides(shape: tuple[int, ...]) -> list[int]:
    """Element strides of a C-ordered array of ``shape``."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return list(reversed(strides))


def _wrapped_indices(ctx: ExportContext, value: ir.Value, sizes: np.ndarray) -> str:
    """``value`` as int64 with negative entries wrapped by ``sizes`` (broadcast)."""
    blob = ctx.blob(value)
    if ctx.dtype(value) != ir.DataType.INT64:
        blob = ctx.temp("Cast", [blob], "indices", to=caffe2_dtype(ir.DataType.INT64))
    negative = ctx.temp("LT", [blob, ctx.constant(np.array(0, dtype=np.int64), "zero")], "negative")
    shifted = ctx.temp("Add", [blob, ctx.constant(sizes.astype(np.int64), "sizes")], "shifted")
    return ctx.temp("Where", [negative, shifted, blob], "wrapped")


def _flat_positions(
    ctx: ExportContext, data_shape: tuple[int, ...], index: ir.Value, axis: int
) -> str:
    """Flat positions in ``data`` of GatherElements/ScatterElements' ``index`` along ``axis``."""
    index_shape = ctx.need_shape(index, "to compute flat positions")
    strides = _strides(data_shape)
    grid = np.indices(index_shape, dtype=np.int64)
    base = sum(grid[d] * strides[d] for d in range(len(index_shape)) if d != axis)
    base_blob = ctx.constant(np.asarray(base, dtype=np.int64), "base")
    wrapped = _wrapped_indices(ctx, index, np.array(data_shape[axis]))
    along = ctx.temp("Mul", [wrapped, ctx.constant(np.array(strides[axis], np.int64), "stride")])
    return ctx.temp("Add", [base_blob, along], "positions")


@ops.register("GatherElements", since=11)
def gather_elements_v11(node: ir.Node, ctx: ExportContext) -> None:
    data_shape = ctx.need_shape(node.inputs[0], "to flatten it")
    axis = normalize_axis(ctx, attr_int(node, "axis", 0), len(data_shape))
    positions = _flat_positions(ctx, data_shape, required(ctx, node, 1), axis)
    flat = reshape(ctx, ctx.input(node, 0), [-1])
    ctx.emit("Gather", [flat, positions], [ctx.output(node)])


def _row_positions(
    ctx: ExportContext, data_shape: tuple[int, ...], index: ir.Value, batch_dims: int
) -> tuple[str, int]:
    """Row numbers into ``data`` reshaped to [rows, rest] for GatherND/ScatterND's ``index``."""
    index_shape = ctx.need_shape(index, "to compute row positions")
    depth = index_shape[-1]
    lead = data_shape[batch_dims : batch_dims + depth]
    rows_per_batch = int(np.prod(lead))
    strides = np.array(_strides(tuple(lead)), dtype=np.int64)
    wrapped = _wrapped_indices(ctx, index, np.array(lead, dtype=np.int64))
    weighted = ctx.temp("Mul", [wrapped, ctx.constant(strides, "strides")], "weighted")
    rows = ctx.temp("ReduceSum", [weighted], "rows", axes=[len(index_shape) - 1], keepdims=0)
    if batch_dims:
        batch = np.indices(index_shape[:-1], dtype=np.int64)[:batch_dims]
        batch_strides = _strides(tuple(index_shape[:batch_dims]))
        offset = sum(batch[d] * batch_strides[d] for d in range(batch_dims)) * rows_per_batch
        rows = ctx.temp("Add", [rows, ctx.constant(np.asarray(offset, np.int64), "batch")], "rows")
    total_rows = int(np.prod(data_shape[: batch_dims + depth]))
    return rows, total_rows


@ops.register("GatherND", since=11)
def gather_nd_v11(node: ir.Node, ctx: ExportContext) -> None:
    data_shape = ctx.need_shape(node.inputs[0], "to flatten it")
    batch_dims = attr_int(node, "batch_dims", 0)
    rows, total = _row_positions(ctx, data_shape, required(ctx, node, 1), batch_dims)
    index_shape = ctx.need_shape(node.inputs[1], "")
    rest = list(data_shape[batch_dims + index_shape[-1] :])
    table = reshape(ctx, ctx.input(node, 0), [total, *rest])
    gathered = ctx.temp("Gather", [table, rows], "gathered")
    out = ctx.need_shape(node.outputs[0], "for the result's shape")
    reshape(ctx, gathered, list(out), ctx.output(node))


def _scatter(node: ir.Node, ctx: ExportContext, positions: str, rows: int, rest: list[int]) -> None:
    reduction = attr_str(node, "reduction", "none")
    data_shape = ctx.need_shape(node.inputs[0], "to flatten it")
    dtype = ctx.dtype(node.inputs[0])
    # ScatterAssign's data types (utility_ops.h): bools and 8/16-bit integers go through int64.
    table, back = carried(ctx, reshape(ctx, ctx.input(node, 0), [rows, *rest]), dtype,
                          SCATTER_ASSIGN_TYPES, "ScatterAssign (utility_ops.h)")  # fmt: skip
    flat_positions = reshape(ctx, positions, [-1])
    updates = reshape(ctx, ctx.input(node, 2), [-1, *rest])
    if back is not None:
        updates = cast(ctx, updates, ir.DataType.INT64)
    # Caffe2's scatter ops update DATA in place, so they work on a copy.
    work = ctx.temp("Copy", [table], "scattered")
    if reduction == "none":
        ctx.emit("ScatterAssign", [work, flat_positions, updates], [work])
    elif reduction == "add" and dtype in (None, ir.DataType.FLOAT):
        # ScatterWeightedSumOp<float, CPUContext> (utility_ops.cc): float only.
        one = ctx.constant(np.array([1.0], dtype=np.float32), "one")
        inputs = [work, one, flat_positions, updates, one]
        ctx.emit("ScatterWeightedSum", inputs, [work])
    elif reduction in ("add", "mul", "max", "min"):
        # No Caffe2 scatter reduces this way: one read-combine-write per update, in order,
        # so that repeated indices combine as ONNX defines.
        combine = {"add": "Add", "mul": "Mul", "max": "Max", "min": "Min"}[reduction]
        index_shape = ctx.need_shape(node.inputs[1], "to unroll the updates")
        count = int(
            np.prod(
                index_shape[:-1]
                if rest or len(index_shape) > 1 and rows != int(np.prod(data_shape))
                else index_shape
            )
        )
        if count > 256:
            raise ctx.error(f"reduction={reduction!r} over {count} updates is too many to unroll")
        for i in range(count):
            where = ctx.temp("Slice", [flat_positions], "at", starts=[i], ends=[i + 1])
            value = ctx.temp(
                "Slice", [updates], "update", starts=[i] + [0] * len(rest), ends=[i + 1, *rest]
            )
            current = ctx.temp("Gather", [work, where], "current")
            if combine in ("Max", "Min"):
                # Caffe2's Max and Min are float only (minmax_ops.cc).
                work_type = ir.DataType.INT64 if back is not None else _numeric(ctx, node)
                combined = runtime.extreme(ctx, current, value, work_type, combine)
            else:
                combined = ctx.temp(combine, [current, value])
            ctx.emit("ScatterAssign", [work, where, combined], [work])
    else:
        raise ctx.error(f"reduction={reduction!r} has no Caffe2 scatter operator")
    if back is None:
        reshape(ctx, work, list(data_shape), ctx.output(node))
        return
    carried_back(ctx, reshape(ctx, work, list(data_shape)), back, ctx.output(node))


def _numeric(ctx: ExportContext, node: ir.Node) -> ir.DataType:
    """Input 0's type, where Caffe2's comparisons and Where take it (int32, int64, float,
    double); refused otherwise."""
    dtype = ctx.dtype(node.inputs[0]) or ir.DataType.FLOAT
    if dtype not in NUMERIC:
        raise ctx.error(f"a max or min reduction of {dtype.name} has no Caffe2 form here")
    return dtype


@ops.register("ScatterElements", since=11)
def scatter_elements_v11(node: ir.Node, ctx: ExportContext) -> None:
    data_shape = ctx.need_shape(node.inputs[0], "to flatten it")
    axis = normalize_axis(ctx, attr_int(node, "axis", 0), len(data_shape))
    positions = _flat_positions(ctx, data_shape, required(ctx, node, 1), axis)
    _scatter(node, ctx, positions, int(np.prod(data_shape)), [])


@ops.register("Scatter", since=9, until=10)
def scatter_v9(node: ir.Node, ctx: ExportContext) -> None:
    scatter_elements_v11(node, ctx)


@ops.register("ScatterND", since=11)
def scatter_nd_v11(node: ir.Node, ctx: ExportContext) -> None:
    data_shape = ctx.need_shape(node.inputs[0], "to flatten it")
    rows, total = _row_positions(ctx, data_shape, required(ctx, node, 1), 0)
    depth = ctx.need_shape(node.inputs[1], "")[-1]
    _scatter(node, ctx, rows, total, list(data_shape[depth:]))


def _shift(
    ctx: ExportContext,
    blob: str,
    shape: tuple[int, ...],
    axis: int,
    by: int,
    dtype: np.dtype,
    fill: int = 0,
) -> str:
    """``blob`` moved ``by`` places along ``axis``, ``fill`` coming in at the front."""
    n = shape[axis]
    ends = list(shape)
    ends[axis] = n - by
    kept = ctx.temp("Slice", [blob], "kept", starts=[0] * len(shape), ends=ends)
    zero_shape = list(shape)
    zero_shape[axis] = by
    zeros = ctx.constant(np.full(zero_shape, fill, dtype=dtype), "fill")
    out = ctx.fresh("shifted")
    ctx.emit("Concat", [zeros, kept], [out, ctx.fresh("split_info")], axis=axis)
    return out


def _scan(node: ir.Node, ctx: ExportContext, combine: str, identity: int) -> None:
    shape = ctx.need_shape(node.inputs[0], "for the scan")
    axis_value = ctx.const(node.inputs[1])
    if axis_value is not None:
        axis = normalize_axis(ctx, int(axis_value), len(shape))
        ctx.emit("Copy", [_scan_along(node, ctx, shape, axis, combine, identity)],
                 [ctx.output(node)])  # fmt: skip
        return
    # A run-time axis: scan along every axis and keep the scan whose axis the input names.
    axis_blob = runtime.int64(ctx, required(ctx, node, 1))
    axes = ctx.temp("Reshape", [axis_blob], "axes", shape=[1])
    shape_blob = ctx.constant(np.array(shape, dtype=np.int64), "shape")
    result = _scan_along(node, ctx, shape, 0, combine, identity)
    for axis in range(1, len(shape)):
        named = runtime.axis_flag(ctx, axes, len(shape), axis)
        chosen = expand(ctx, named, shape_blob, flag=True)
        scanned = _scan_along(node, ctx, shape, axis, combine, identity)
        result = ctx.temp("Where", [chosen, scanned, result], "scan")
    ctx.emit("Copy", [result], [ctx.output(node)])


def _scan_along(
    node: ir.Node,
    ctx: ExportContext,
    shape: tuple[int, ...],
    axis: int,
    combine: str,
    identity: int,
) -> str:
    dtype = (ctx.dtype(node.inputs[0]) or ir.DataType.FLOAT).numpy()
    n = shape[axis]
    blob = ctx.input(node, 0)
    reverse = attr_int(node, "reverse", 0)
    flip = ctx.constant(np.arange(n - 1, -1, -1, dtype=np.int64), "flip") if reverse else ""
    if reverse:
        blob = ctx.temp("Gather", [blob, flip], "reversed", axis=axis)
    # Hillis-Steele scan: log2(n) steps, each combining with a copy shifted by 2**k.
    step = 1
    while step < n:
        shifted = _shift(ctx, blob, shape, axis, step, dtype, identity)
        blob = ctx.temp(combine, [blob, shifted], "scan")
        step *= 2
    if attr_int(node, "exclusive", 0) and n:
        blob = _shift(ctx, blob, shape, axis, 1, dtype, identity)
    if reverse:
        blob = ctx.temp("Gather", [blob, flip], "reversed", axis=axis)
    return blob


@ops.register("CumSum", since=11)
def cum_sum_v11(node: ir.Node, ctx: ExportContext) -> None:
    _scan(node, ctx, "Add", 0)


@ops.register("CumProd", since=26)
def cum_prod_v26(node: ir.Node, ctx: ExportContext) -> None:
    _scan(node, ctx, "Mul", 1)


def round_half_even(ctx: ExportContext, blob: str, dtype: ir.DataType) -> str:
    """Rounds half to even: floor(x + 0.5), minus one at exact ties that land on an odd number."""
    half_blob = ctx.scalar(0.5, dtype)
    rounded = runtime.floor(ctx, ctx.temp("Add", [blob, half_blob]), dtype)
    tie = ctx.temp("EQ", [ctx.temp("Sub", [rounded, blob]), half_blob], "tie")
    half = ctx.temp("Mul", [rounded, half_blob], "half")
    odd = ctx.temp("NE", [runtime.floor(ctx, half, dtype), half], "odd")
    down = ctx.temp("Sub", [rounded, ctx.scalar(1.0, dtype)], "down")
    even = ctx.temp("Where", [ctx.temp("And", [tie, odd]), down, rounded], "even")
    # Past 2**mantissa every value is whole already (and x + 0.5 may round up).
    whole = {ir.DataType.FLOAT16: 2.0**10, ir.DataType.DOUBLE: 2.0**52}.get(dtype, 2.0**23)
    large = ctx.temp("GE", [runtime.absolute(ctx, blob, dtype), ctx.scalar(whole, dtype)], "large")
    return ctx.temp("Where", [large, blob, even], "round")


@ops.register("Round", since=11)
def round_v11(node: ir.Node, ctx: ExportContext) -> None:
    x = required(ctx, node, 0)
    result = round_half_even(ctx, ctx.blob(x), ctx.dtype(x) or ir.DataType.FLOAT)
    ctx.emit("Copy", [result], [ctx.output(node)])


@ops.register("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear_v11(node: ir.Node, ctx: ExportContext) -> None:
    x = ctx.input(node, 0)
    f32 = ir.DataType.FLOAT
    zero, top = ctx.scalar(0.0, f32), ctx.scalar(255.0, f32)
    axes = list(range(ctx.need_rank(node.inputs[0])))
    low = ctx.temp("Min", [ctx.temp("ReduceMin", [x], "min", axes=axes, keepdims=0), zero], "low")
    high = ctx.temp("Max", [ctx.temp("ReduceMax", [x], "max", axes=axes, keepdims=0), zero], "high")
    spread = ctx.temp("Sub", [high, low], "spread")
    flat = ctx.temp("EQ", [spread, zero], "flat")
    spread = ctx.temp("Where", [flat, ctx.scalar(1.0, f32), spread], "spread")
    scale = ctx.temp("Div", [spread, top], "scale")
    ctx.emit("Copy", [scale], [ctx.output(node, 1)])
    start = ctx.temp("Div", [ctx.temp("Negative", [low]), scale], "start")
    point = round_half_even(ctx, ctx.temp("Clip", [start], "start", min=0.0, max=255.0), f32)
    ctx.emit("Cast", [point], [ctx.output(node, 2)], to=caffe2_dtype(ir.DataType.UINT8))
    steps = round_half_even(ctx, ctx.temp("Div", [x, scale], "steps"), f32)
    shifted = ctx.temp("Clip", [ctx.temp("Add", [steps, point])], "shifted", min=0.0, max=255.0)
    ctx.emit("Cast", [shifted], [ctx.output(node, 0)], to=caffe2_dtype(ir.DataType.UINT8))


@ops.register("Compress", since=11)
def compress_v11(node: ir.Node, ctx: ExportContext) -> None:
    data = node.inputs[0]
    shape = ctx.need_shape(data, "to mask it")
    axis_attr = node.attributes.get("axis")
    blob = ctx.blob(data)
    if axis_attr is None:
        blob, shape, axis = reshape(ctx, blob, [-1]), (int(np.prod(shape)),), 0
    else:
        axis = normalize_axis(ctx, attr_int(node, "axis", 0), len(shape))
    perm = list(range(len(shape)))
    perm[0], perm[axis] = perm[axis], perm[0]
    if axis:
        moved = ctx.fresh("moved")
        transpose(ctx, blob, perm, ctx.dtype(data), moved)
        blob = moved
    mask = ctx.input(node, 1)
    length = ctx.need_shape(node.inputs[1], "for the mask length")[0]
    if length < shape[axis]:
        falses = ctx.constant(np.zeros(shape[axis] - length, dtype=np.bool_), "falses")
        padded = ctx.fresh("mask")
        ctx.emit("Concat", [mask, falses], [padded, ctx.fresh("split_info")], axis=0)
        mask = padded
    elif length > shape[axis]:
        mask = ctx.temp("Slice", [mask], "mask", starts=[0], ends=[shape[axis]])
    if not axis:
        ctx.emit("BooleanMask", [blob, mask], [ctx.output(node)])
        return
    masked = ctx.temp("BooleanMask", [blob, mask], "masked")
    transpose(ctx, masked, perm, ctx.dtype(data), ctx.output(node))


@ops.register("CenterCropPad", since=18)
def center_crop_pad_v18(node: ir.Node, ctx: ExportContext) -> None:
    shape = ctx.need_shape(node.inputs[0], "to crop or pad it")
    axes = [
        normalize_axis(ctx, a, len(shape)) for a in (attr_ints(node, "axes") or range(len(shape)))
    ]
    if ctx.const(node.inputs[1]) is None:
        _runtime_center_crop_pad(node, ctx, shape, axes)
        return
    target = [int(v) for v in ctx.need_const(node.inputs[1], "the target shape").reshape(-1)]
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
    blob = ctx.temp("Slice", [ctx.input(node, 0)], "cropped", starts=starts, ends=ends)
    current = [e - s for s, e in zip(starts, ends, strict=True)]
    dtype = (ctx.dtype(node.inputs[0]) or ir.DataType.FLOAT).numpy()
    for axis, (before, after) in pads.items():
        parts = []
        for count in (before, after):
            block = list(current)
            block[axis] = count
            parts.append(ctx.constant(np.zeros(block, dtype=dtype), "zeros") if count else None)
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
    blob = ctx.input(node, 0)
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


@ops.register("ReduceProd", since=1, until=17)
def reduce_prod_v1(node: ir.Node, ctx: ExportContext) -> None:
    _reduce_prod(node, ctx, attr_ints(node, "axes"))


@ops.register("ReduceProd", since=18)
def reduce_prod_v18(node: ir.Node, ctx: ExportContext) -> None:
    axes = ctx.const_ints(node.inputs[1]) if ctx.has_input(node, 1) else None
    if ctx.has_input(node, 1) and axes is None:
        _runtime_reduce_prod(node, ctx)
        return
    if not axes and attr_int(node, "noop_with_empty_axes", 0):
        ctx.emit("Copy", [ctx.input(node, 0)], [ctx.output(node)])
        return
    _reduce_prod(node, ctx, axes)


def _runtime_reduce_prod(node: ir.Node, ctx: ExportContext) -> None:
    shape = ctx.need_shape(node.inputs[0], "to split it")

    def product_along(blob: str, axis: int) -> str:
        pieces = [ctx.fresh("slice") for _ in range(shape[axis])]
        ctx.emit("Split", [blob], pieces, axis=axis, split=[1] * shape[axis])
        product = pieces[0]
        for piece in pieces[1:]:
            product = ctx.temp("Mul", [product, piece], "product")
        return product

    data = required(ctx, node, 0)
    named = reduce.named_axes(node, ctx, len(shape))
    reduced = reduce.reduce_named_axes(ctx, ctx.blob(data), data, named, product_along, 1)
    if attr_int(node, "keepdims", 1):
        ctx.emit("Copy", [reduced], [ctx.output(node)])
    else:
        reduce.drop_named(ctx, reduced, named, ctx.output(node))


def _reduce_prod(node: ir.Node, ctx: ExportContext, axes: list[int] | None) -> None:
    # Caffe2 has no product reduction: multiply the slices along each axis.
    shape = list(ctx.need_shape(node.inputs[0], "to split it"))
    rank = len(shape)
    axes = sorted({normalize_axis(ctx, a, rank) for a in (axes or range(rank))})
    out_shape = ctx.need_shape(node.outputs[0], "for the result's shape")
    if any(shape[a] == 0 for a in axes):
        dtype = (ctx.dtype(node.outputs[0]) or ir.DataType.FLOAT).numpy()
        ctx.constant_output(np.ones(out_shape, dtype=dtype), node)
        return
    blob = ctx.input(node, 0)
    for axis in axes:
        if shape[axis] == 1:
            continue
        pieces = [ctx.fresh("slice") for _ in range(shape[axis])]
        ctx.emit("Split", [blob], pieces, axis=axis, split=[1] * shape[axis])
        blob = pieces[0]
        for piece in pieces[1:]:
            blob = ctx.temp("Mul", [blob, piece], "product")
        shape[axis] = 1
    reshape(ctx, blob, list(out_shape), ctx.output(node))


@ops.register("BatchNormalization", since=14)
def batch_normalization_v14(node: ir.Node, ctx: ExportContext) -> None:
    if not attr_int(node, "training_mode", 0):
        from unframe.backends.caffe2.export.ops.nn import batch_normalization_v9

        batch_normalization_v9(node, ctx)
        return
    # Batch statistics over all dims but the channels, as ONNX's training mode defines them.
    x = node.inputs[0]
    rank = ctx.need_rank(x)
    channels = ctx.need_shape(x, "for the channel count")[1]
    axes = [0, *range(2, rank)]
    blob = ctx.blob(x)
    eps = attr_float(node, "epsilon", 1e-5)
    momentum = attr_float(node, "momentum", 0.9)
    mean = ctx.temp("ReduceMean", [blob], "mean", axes=axes, keepdims=1)
    centered = ctx.temp("Sub", [blob, mean], "centered")
    var = ctx.temp("ReduceMean", [ctx.temp("Sqr", [centered])], "var", axes=axes, keepdims=1)
    std = ctx.temp("Sqrt", [ctx.temp("Add", [var, ctx.scalar(eps, x)])], "std")
    per_channel = [1, channels] + [1] * (rank - 2)
    scale = reshape(ctx, ctx.input(node, 1), per_channel)
    bias = reshape(ctx, ctx.input(node, 2), per_channel)
    normed = ctx.temp("Mul", [ctx.temp("Div", [centered, std]), scale], "scaled")
    ctx.emit("Add", [normed, bias], [ctx.output(node)])
    for index, current, running in ((1, mean, 3), (2, var, 4)):
        if index < len(node.outputs) and node.outputs[index] is not None:
            flat = reshape(ctx, current, [channels])
            kept = ctx.temp("Scale", [ctx.input(node, running)], "kept", scale=momentum)
            new = ctx.temp("Scale", [flat], "new", scale=1.0 - momentum)
            ctx.emit("Add", [kept, new], [ctx.output(node, index)])


@ops.register("RotaryEmbedding", since=23)
def rotary_embedding_v23(node: ir.Node, ctx: ExportContext) -> None:
    x = required(ctx, node, 0)
    original = ctx.need_shape(x, "to split the heads")
    blob = ctx.blob(x)
    if len(original) == 4:  # [batch, heads, seq, head] -> [batch, seq, heads, head]
        blob = ctx.temp("Transpose", [blob], "bshd", axes=[0, 2, 1, 3])
        batch, heads, seq, head = original
    else:
        heads = attr_int(node, "num_heads", 0)
        if not heads:
            raise ctx.error("a 3-D input needs num_heads")
        batch, seq, hidden = original
        head = hidden // heads
        blob = reshape(ctx, blob, [batch, seq, heads, head])
    rotary = attr_int(node, "rotary_embedding_dim", 0) or head
    half = rotary // 2
    rotate = blob
    if rotary < head:
        rotate = ctx.temp(
            "Slice", [blob], "rotate", starts=[0, 0, 0, 0], ends=[batch, seq, heads, rotary]
        )
        kept = ctx.temp(
            "Slice", [blob], "kept", starts=[0, 0, 0, rotary], ends=[batch, seq, heads, head]
        )
    caches = []
    for index in (1, 2):
        cache = ctx.input(node, index)
        if ctx.has_input(node, 3):
            cache = ctx.temp("Gather", [cache, ctx.input(node, 3)], "cache")
        caches.append(ctx.temp("ExpandDims", [cache], "cache", dims=[2]))
    cos, sin = caches
    interleaved = attr_int(node, "interleaved", 0)
    if interleaved:
        evens = ctx.constant(np.arange(0, rotary, 2, dtype=np.int64), "evens")
        odds = ctx.constant(np.arange(1, rotary, 2, dtype=np.int64), "odds")
        x1 = ctx.temp("Gather", [rotate, evens], "x1", axis=3)
        x2 = ctx.temp("Gather", [rotate, odds], "x2", axis=3)
    else:
        x1, x2 = ctx.fresh("x1"), ctx.fresh("x2")
        ctx.emit("Split", [rotate], [x1, x2], axis=3, split=[half, half])
    real = ctx.temp("Sub", [ctx.temp("Mul", [cos, x1]), ctx.temp("Mul", [sin, x2])], "real")
    imag = ctx.temp("Add", [ctx.temp("Mul", [sin, x1]), ctx.temp("Mul", [cos, x2])], "imag")
    rotated = ctx.fresh("rotated")
    if interleaved:
        pairs = [ctx.temp("ExpandDims", [part], "pair", dims=[4]) for part in (real, imag)]
        woven = ctx.fresh("woven")
        ctx.emit("Concat", pairs, [woven, ctx.fresh("split_info")], axis=4)
        reshape(ctx, woven, [batch, seq, heads, rotary], rotated)
    else:
        ctx.emit("Concat", [real, imag], [rotated, ctx.fresh("split_info")], axis=3)
    if rotary < head:
        joined = ctx.fresh("joined")
        ctx.emit("Concat", [rotated, kept], [joined, ctx.fresh("split_info")], axis=3)
        rotated = joined
    if len(original) == 4:
        ctx.emit("Transpose", [rotated], [ctx.output(node)], axes=[0, 2, 1, 3])
    else:
        reshape(ctx, rotated, list(original), ctx.output(node))
