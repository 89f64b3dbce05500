"""Index-driven ops built from Caffe2's Gather, ScatterAssign and comparisons (static shapes):
OneHot, MaxUnpool, ReverseSequence, and ai.onnx.ml's Binarizer and ArrayFeatureExtractor."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.context import ExportContext, caffe2_dtype
from unframe.backends.caffe2.ops import _runtime as runtime
from unframe.backends.caffe2.ops._common import (
    NUMERIC,
    SCATTER_ASSIGN_TYPES,
    attr_float,
    attr_int,
    attr_ints,
    attr_str,
    carried,
    carried_back,
    cast,
    normalize_axis,
    required,
    reshape,
    transpose,
)
from unframe.backends.caffe2.registry import ops


@ops.register("OneHot", since=9)
def one_hot_v9(node: ir.Node, ctx: ExportContext) -> None:
    indices = required(ctx, node, 0)
    shape = ctx.need_shape(indices, "to place the one-hot axis")
    axis = normalize_axis(ctx, attr_int(node, "axis", -1), len(shape) + 1)
    depth_value = ctx.known_value(node.inputs[1])
    targets_shape = [1] * (len(shape) + 1)
    if depth_value is not None:
        depth = int(depth_value.reshape(-1)[0])
        depth_blob = ctx.make_constant(np.array(depth, dtype=np.float64), "depth")
        targets_shape[axis] = depth
        positions = np.arange(depth, dtype=np.float64).reshape(targets_shape)
        targets = ctx.make_constant(positions, "targets")
    else:
        # A run-time depth (any numeric type, truncated to an integer as ONNX says).
        depth_input = required(ctx, node, 1)
        whole = ctx.temp(
            "Cast", [ctx.blob(depth_input)], "depth", to=caffe2_dtype(ir.DataType.INT64)
        )
        scalar = runtime.scalar_of(ctx, depth_input, whole)
        depth_blob = ctx.temp("Cast", [scalar], "depth", to=caffe2_dtype(ir.DataType.DOUBLE))
        zero, one = (
            ctx.make_constant(np.array(0.0), "zero"),
            ctx.make_constant(np.array(1.0), "one"),
        )
        targets_shape[axis] = -1
        targets = reshape(ctx, ctx.temp("Range", [zero, depth_blob, one], "targets"), targets_shape)
    # Negative indices count from the end; out-of-range ones match no position.
    value = ctx.temp("Cast", [ctx.blob(indices)], "indices", to=caffe2_dtype(ir.DataType.DOUBLE))
    negative = ctx.temp("LT", [value, ctx.make_constant(np.array(0.0), "zero")], "negative")
    shifted = ctx.temp("Add", [value, depth_blob], "shifted")
    wrapped = ctx.temp("Where", [negative, shifted, value], "wrapped")
    column = ctx.temp("ExpandDims", [wrapped], "column", dims=[axis])
    hot = ctx.temp("EQ", [column, targets], "hot")
    shape_blob = ctx.temp("Shape", [hot], "shape")
    pair = ctx.input(2)
    off = ctx.temp("Expand", [ctx.temp("Slice", [pair], "off", starts=[0], ends=[1]), shape_blob])
    on = ctx.temp("Expand", [ctx.temp("Slice", [pair], "on", starts=[1], ends=[2]), shape_blob])
    ctx.emit("Where", [hot, on, off], [ctx.output(node)])


@ops.register("MaxUnpool", since=11)
def max_unpool_v11(node: ir.Node, ctx: ExportContext) -> None:
    x = required(ctx, node, 0)
    in_shape = ctx.need_shape(x, "for the output size")
    kernel = attr_ints(node, "kernel_shape") or []
    spatial = len(kernel)
    strides = attr_ints(node, "strides") or [1] * spatial
    pads = attr_ints(node, "pads") or [0] * (2 * spatial)
    default = tuple(in_shape[:2]) + tuple(
        (in_shape[2 + i] - 1) * strides[i] + kernel[i] - pads[i] - pads[spatial + i]
        for i in range(spatial)
    )
    # The output_shape input, where given, decides the output's shape (not the declared one).
    given = ctx.known_ints(node.inputs[2]) if ctx.has_input(2) else None
    final = tuple(given) if given is not None else default
    if len(final) != len(default):
        raise ctx.error(f"output_shape {list(final)} must have {len(default)} dims")
    if any(f < d for f, d in zip(final, default, strict=True)):
        raise ctx.error("an output_shape smaller than the pooled input has no exact form")
    out_shape = default
    # MaxPool's indices are flat positions in its input, which is MaxUnpool's output.
    dtype = ctx.dtype(x) or ir.DataType.FLOAT
    if dtype not in SCATTER_ASSIGN_TYPES:
        names = ", ".join(sorted(t.name for t in SCATTER_ASSIGN_TYPES))
        raise ctx.error(f"Caffe2 registers ScatterAssign for {names} only (utility_ops.h), "
                        f"not {dtype.name}")  # fmt: skip
    size = int(np.prod(out_shape))
    work = ctx.temp(
        "ConstantFill", [], "unpooled", shape=[size], value=0.0, dtype=caffe2_dtype(dtype)
    )
    positions = reshape(ctx, ctx.input(1), [-1])
    ctx.emit("ScatterAssign", [work, positions, reshape(ctx, ctx.blob(x), [-1])], [work])
    blob = reshape(ctx, work, list(out_shape))
    if ctx.has_input(2) and given is None:
        _grow_at_run_time(ctx, node, blob, out_shape)
        return
    # A larger output_shape keeps the unpooled values at the start of each axis.
    current = list(out_shape)
    for axis, (want, have) in enumerate(zip(final, out_shape, strict=True)):
        if want > have:
            block = list(current)
            block[axis] = want - have
            zeros = ctx.make_constant(np.zeros(block, dtype=dtype.numpy()), "zeros")
            grown = ctx.fresh("grown")
            ctx.emit("Concat", [blob, zeros], [grown, ctx.fresh("split_info")], axis=axis)
            blob, current[axis] = grown, want
    ctx.emit("Copy", [blob], [ctx.output(node)])


def _grow_at_run_time(ctx: ExportContext, node: ir.Node, blob: str, shape: tuple[int, ...]) -> None:
    """``blob`` (the unpooled values) zero-padded at the end of each axis to the run-time
    output_shape, as onnx's reference places them: each axis reads positions 0 .. size - 1,
    those past the unpooled ones written as 0."""
    x = required(ctx, node, 0)
    sizes = runtime.int64(ctx, required(ctx, node, 2))
    fill = ctx.scalar(0, x)
    zero, one = runtime.const64(ctx, 0), runtime.const64(ctx, 1)
    for axis, dim in enumerate(shape):
        size = ctx.temp("Gather", [sizes, runtime.const64(ctx, axis)], "size")
        # ONNX rejects an output_shape smaller than the unpooled values, which the window below
        # would crop: reading position dim - 1 of 0 .. size - 1 fails the net there instead.
        room = ctx.temp("Range", [zero, size, one], "room")
        ctx.temp("Gather", [room, runtime.const64(ctx, dim - 1)], "fits")
        blob = runtime.window(ctx, blob, len(shape), axis, dim, (zero, size), "constant", fill)
    ctx.emit("Copy", [blob], [ctx.output(node)])


@ops.register("ReverseSequence", since=10)
def reverse_sequence_v10(node: ir.Node, ctx: ExportContext) -> None:
    shape = ctx.need_shape(node.inputs[0], "to reverse it")
    time_axis, batch_axis = attr_int(node, "time_axis", 0), attr_int(node, "batch_axis", 1)
    if {time_axis, batch_axis} != {0, 1}:
        raise ctx.error("time_axis and batch_axis must be 0 and 1")
    steps, batch = shape[time_axis], shape[batch_axis]
    grid = np.indices((shape[0], shape[1]), dtype=np.int64)
    t_grid, b_grid = grid[time_axis], grid[batch_axis]
    lengths = ctx.input(1)
    if ctx.dtype(node.inputs[1]) != ir.DataType.INT64:
        lengths = ctx.temp("Cast", [lengths], "lengths", to=caffe2_dtype(ir.DataType.INT64))
    lengths = reshape(ctx, lengths, [1, batch] if batch_axis == 1 else [batch, 1])
    t_blob = ctx.make_constant(t_grid, "t")
    inside = ctx.temp("LT", [t_blob, lengths], "inside")
    one = ctx.make_constant(np.array(1, dtype=np.int64), "one")
    mirrored = ctx.temp("Sub", [ctx.temp("Sub", [lengths, one]), t_blob], "mirrored")
    source = ctx.temp("Where", [inside, mirrored, t_blob], "source")
    # Row of x[t, b] (or x[b, t]) in x reshaped to [T * B, rest].
    if time_axis == 0:
        rows = ctx.temp("Mul", [source, ctx.make_constant(np.array(batch, np.int64), "batch")])
        rows = ctx.temp("Add", [rows, ctx.make_constant(b_grid, "b")], "rows")
    else:
        rows = ctx.temp("Add", [ctx.make_constant(b_grid * steps, "b"), source], "rows")
    table = reshape(ctx, ctx.input(0), [steps * batch, *shape[2:]])
    gathered = ctx.temp("Gather", [table, rows], "gathered")
    reshape(ctx, gathered, list(shape), ctx.output(node))


@ops.register("Binarizer", since=1, domain="ai.onnx.ml")
def binarizer_v1(node: ir.Node, ctx: ExportContext) -> None:
    x = required(ctx, node, 0)
    dtype = ctx.dtype(x) or ir.DataType.FLOAT
    above = ctx.temp("GT", [ctx.blob(x), ctx.scalar(attr_float(node, "threshold", 0.0), x)])
    ctx.emit("Cast", [above], [ctx.output(node)], to=caffe2_dtype(dtype))


@ops.register("ArrayFeatureExtractor", since=1, domain="ai.onnx.ml")
def array_feature_extractor_v1(node: ir.Node, ctx: ExportContext) -> None:
    rank = ctx.need_rank(node.inputs[0])
    indices = reshape(ctx, ctx.input(1), [-1])
    ctx.emit("Gather", [ctx.input(0), indices], [ctx.output(node)], axis=rank - 1)


@ops.register("NonZero", since=9)
def non_zero_v9(node: ir.Node, ctx: ExportContext) -> None:
    """The flat positions BooleanMask keeps, unravelled into one row of coordinates per axis."""
    x = required(ctx, node, 0)
    shape = ctx.need_shape(x, "to unravel the positions")
    size = int(np.prod(shape))
    if not shape or not size:
        raise ctx.error("a scalar or empty input has no Caffe2 form here")
    flat = reshape(ctx, ctx.blob(x), [-1])
    mask = ctx.temp("Cast", [flat], "mask", to=caffe2_dtype(ir.DataType.BOOL))
    every = ctx.make_constant(np.arange(size, dtype=np.int64), "positions")
    positions = ctx.temp("BooleanMask", [every, mask], "positions")
    rows = []
    stride = size
    for axis, dim in enumerate(shape):
        stride //= dim
        index = ctx.temp("Div", [positions, runtime.const64(ctx, stride)], "index")
        if axis:  # the first coordinate is below its dim already
            index = ctx.temp("Mod", [index], "index", divisor=dim, sign_follow_divisor=1)
        rows.append(ctx.temp("ExpandDims", [index], "row", dims=[0]))
    ctx.emit("Concat", rows, [ctx.output(node), ctx.fresh("split_info")], axis=0)


@ops.register("Col2Im", since=18)
def col2im_v18(node: ir.Node, ctx: ExportContext) -> None:
    """Each column entry's place in the image, from the run-time image and block shapes; the
    entries are then summed into their places by a product with a one-hot matrix (entries
    landing in the padding go to a last, dropped place)."""
    x = required(ctx, node, 0)
    batch, rows, blocks = ctx.need_shape(x, "for the column layout")
    rank = ctx.need_shape(node.inputs[1], "for the image rank")[0]
    pads = attr_ints(node, "pads") or [0] * (2 * rank)
    dilations = attr_ints(node, "dilations") or [1] * rank
    strides = attr_ints(node, "strides") or [1] * rank
    image = runtime.int64(ctx, required(ctx, node, 1))
    block = runtime.int64(ctx, required(ctx, node, 2))

    def const(value: int) -> str:
        return runtime.const64(ctx, value)

    def op(op_type: str, *inputs: str) -> str:
        return ctx.temp(op_type, list(inputs), op_type.lower())

    def modulo(a: str, m: str) -> str:  # a, m >= 0
        return op("Sub", a, op("Mul", op("Div", a, m), m))

    sizes = [ctx.temp("Gather", [image, const(d)], "size") for d in range(rank)]
    kernel = [ctx.temp("Gather", [block, const(d)], "kernel") for d in range(rank)]
    counts = []
    for d in range(rank):
        reach = op("Add", op("Mul", const(dilations[d]), op("Sub", kernel[d], const(1))), const(1))
        room = op("Sub", op("Add", sizes[d], const(pads[d] + pads[rank + d])), reach)
        counts.append(op("Add", op("Div", room, const(strides[d])), const(1)))
    taps, area = const(1), const(1)
    for d in range(rank):
        taps, area = op("Mul", taps, kernel[d]), op("Mul", area, sizes[d])
    column = ctx.make_constant(np.arange(rows, dtype=np.int64).reshape(rows, 1), "row")
    place = ctx.make_constant(np.arange(blocks, dtype=np.int64).reshape(1, blocks), "block")
    channel = op("Div", column, taps)
    tap = modulo(column, taps)
    flat, inside = const(0), ""
    for d in range(rank):
        inner_taps, inner_blocks = const(1), const(1)
        for e in range(d + 1, rank):
            inner_taps = op("Mul", inner_taps, kernel[e])
            inner_blocks = op("Mul", inner_blocks, counts[e])
        offset = modulo(op("Div", tap, inner_taps), kernel[d])
        start = modulo(op("Div", place, inner_blocks), counts[d])
        position = op("Add", op("Sub", op("Mul", start, const(strides[d])), const(pads[d])),
                      op("Mul", offset, const(dilations[d])))  # fmt: skip
        here = op("And", op("GE", position, const(0)), op("LT", position, sizes[d]))
        inside = op("And", inside, here) if inside else here
        flat = op("Add", op("Mul", flat, sizes[d]), position)
    channels = ctx.temp("Div", [const(rows), taps], "channels")
    total = op("Mul", channels, area)
    target = op("Add", op("Mul", channel, area), flat)
    target = ctx.temp("Where", [inside, target, runtime.like(ctx, total, target)], "target")
    places = ctx.temp("Range", [const(0), op("Add", total, const(1)), const(1)], "places")
    hits = op("EQ", reshape(ctx, target, [-1, 1]), reshape(ctx, places, [1, -1]))
    dtype = ctx.dtype(x) or ir.DataType.FLOAT
    one_hot = ctx.temp("Cast", [hits], "one_hot", to=caffe2_dtype(dtype))
    summed = op("MatMul", reshape(ctx, ctx.blob(x), [batch, rows * blocks]), one_hot)
    ends = ctx.fresh("ends")
    ctx.emit("Concat", [ctx.make_constant(np.array([-1], dtype=np.int64), "end"),
                        reshape(ctx, total, [1])], [ends, ctx.fresh("split_info")], axis=0)  # fmt: skip
    kept = ctx.temp(
        "Slice", [summed, ctx.make_constant(np.zeros(2, dtype=np.int64), "start"), ends]
    )
    shape = ctx.fresh("shape")
    leading = [ctx.make_constant(np.array([batch], dtype=np.int64), "batch"),
               reshape(ctx, channels, [1]), image]  # fmt: skip
    ctx.emit("Concat", leading, [shape, ctx.fresh("split_info")], axis=0)
    reshape(ctx, kept, shape, ctx.output(node))


@ops.register("TensorScatter", since=24)
def tensor_scatter_v24(node: ir.Node, ctx: ExportContext) -> None:
    """Each batch's update written into the cache from its run-time write index on: a cache
    position p takes update entry u where p - index (mod the length, circular) equals u."""
    cache = required(ctx, node, 0)
    shape = ctx.need_shape(cache, "to place the update")
    rank = len(shape)
    axis = normalize_axis(ctx, attr_int(node, "axis", -2), rank)
    if axis == 0:
        raise ctx.error("axis 0 is the batch axis the write indices index")
    count = ctx.need_shape(node.inputs[1], "for the update length")[axis]
    along = [1] * rank
    along[axis] = shape[axis]
    positions = ctx.make_constant(
        np.arange(shape[axis], dtype=np.int64).reshape(along), "positions"
    )
    if ctx.has_input(2):
        starts = runtime.int64(ctx, required(ctx, node, 2))
        batch = reshape(ctx, starts, [-1] + [1] * (rank - 1))
        offsets = ctx.temp("Sub", [positions, batch], "offsets")
    else:
        offsets = positions
    if attr_str(node, "mode", "linear") == "circular":
        offsets = ctx.temp("Mod", [offsets], "offsets", divisor=shape[axis], sign_follow_divisor=1)
    blob = ctx.blob(cache)
    for entry in range(count):
        index = ctx.make_constant(np.array([entry], dtype=np.int64), "entry")
        value = ctx.temp("Gather", [ctx.input(1), index], "update", axis=axis)
        here = ctx.temp("EQ", [offsets, runtime.const64(ctx, entry)], "here")
        chosen = runtime.like_flag(ctx, here, blob)
        blob = ctx.temp("Where", [chosen, runtime.like(ctx, value, blob), blob], "written")
    ctx.emit("Copy", [blob], [ctx.output(node)])


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
    negative = ctx.temp(
        "LT", [blob, ctx.make_constant(np.array(0, dtype=np.int64), "zero")], "negative"
    )
    shifted = ctx.temp("Add", [blob, ctx.make_constant(sizes.astype(np.int64), "sizes")], "shifted")
    return ctx.temp("Where", [negative, shifted, blob], "wrapped")


def _flat_positions(
    ctx: ExportContext, data_shape: tuple[int, ...], index: ir.Value, axis: int
) -> str:
    """Flat positions in ``data`` of GatherElements/ScatterElements' ``index`` along ``axis``."""
    index_shape = ctx.need_shape(index, "to compute flat positions")
    strides = _strides(data_shape)
    grid = np.indices(index_shape, dtype=np.int64)
    base = sum(grid[d] * strides[d] for d in range(len(index_shape)) if d != axis)
    base_blob = ctx.make_constant(np.asarray(base, dtype=np.int64), "base")
    wrapped = _wrapped_indices(ctx, index, np.array(data_shape[axis]))
    along = ctx.temp(
        "Mul", [wrapped, ctx.make_constant(np.array(strides[axis], np.int64), "stride")]
    )
    return ctx.temp("Add", [base_blob, along], "positions")


@ops.register("GatherElements", since=11)
def gather_elements_v11(node: ir.Node, ctx: ExportContext) -> None:
    data_shape = ctx.need_shape(node.inputs[0], "to flatten it")
    axis = normalize_axis(ctx, attr_int(node, "axis", 0), len(data_shape))
    positions = _flat_positions(ctx, data_shape, required(ctx, node, 1), axis)
    flat = reshape(ctx, ctx.input(0), [-1])
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
    weighted = ctx.temp("Mul", [wrapped, ctx.make_constant(strides, "strides")], "weighted")
    rows = ctx.temp("ReduceSum", [weighted], "rows", axes=[len(index_shape) - 1], keepdims=0)
    if batch_dims:
        batch = np.indices(index_shape[:-1], dtype=np.int64)[:batch_dims]
        batch_strides = _strides(tuple(index_shape[:batch_dims]))
        offset = sum(batch[d] * batch_strides[d] for d in range(batch_dims)) * rows_per_batch
        rows = ctx.temp(
            "Add", [rows, ctx.make_constant(np.asarray(offset, np.int64), "batch")], "rows"
        )
    total_rows = int(np.prod(data_shape[: batch_dims + depth]))
    return rows, total_rows


@ops.register("GatherND", since=11)
def gather_nd_v11(node: ir.Node, ctx: ExportContext) -> None:
    data_shape = ctx.need_shape(node.inputs[0], "to flatten it")
    batch_dims = attr_int(node, "batch_dims", 0)
    rows, total = _row_positions(ctx, data_shape, required(ctx, node, 1), batch_dims)
    index_shape = ctx.need_shape(node.inputs[1], "")
    rest = list(data_shape[batch_dims + index_shape[-1] :])
    table = reshape(ctx, ctx.input(0), [total, *rest])
    gathered = ctx.temp("Gather", [table, rows], "gathered")
    out = ctx.need_shape(node.outputs[0], "for the result's shape")
    reshape(ctx, gathered, list(out), ctx.output(node))


def _scatter(node: ir.Node, ctx: ExportContext, positions: str, rows: int, rest: list[int]) -> None:
    reduction = attr_str(node, "reduction", "none")
    data_shape = ctx.need_shape(node.inputs[0], "to flatten it")
    dtype = ctx.dtype(node.inputs[0])
    # ScatterAssign's data types (utility_ops.h): bools and 8/16-bit integers go through int64.
    table, back = carried(ctx, reshape(ctx, ctx.input(0), [rows, *rest]), dtype,
                          SCATTER_ASSIGN_TYPES, "ScatterAssign (utility_ops.h)")  # fmt: skip
    flat_positions = reshape(ctx, positions, [-1])
    updates = reshape(ctx, ctx.input(2), [-1, *rest])
    if back is not None:
        updates = cast(ctx, updates, ir.DataType.INT64)
    # Caffe2's scatter ops update DATA in place, so they work on a copy.
    work = ctx.temp("Copy", [table], "scattered")
    if reduction == "none":
        ctx.emit("ScatterAssign", [work, flat_positions, updates], [work])
    elif reduction == "add" and dtype in (None, ir.DataType.FLOAT):
        # ScatterWeightedSumOp<float, CPUContext> (utility_ops.cc): float only.
        one = ctx.make_constant(np.array([1.0], dtype=np.float32), "one")
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
    mask = ctx.input(1)
    length = ctx.need_shape(node.inputs[1], "for the mask length")[0]
    if length < shape[axis]:
        falses = ctx.make_constant(np.zeros(shape[axis] - length, dtype=np.bool_), "falses")
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
