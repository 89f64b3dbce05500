"""Shape and data-movement ops: reshape, slicing, gathering, padding, resizing, constants."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.context import ExportContext, caffe2_dtype
from unframe.backends.caffe2.ops import _runtime as runtime
from unframe.backends.caffe2.ops._common import (
    NARROW_INTEGERS,
    attr_float,
    attr_int,
    attr_ints,
    attr_str,
    carried,
    carried_back,
    cast,
    expand,
    normalize_axis,
    reshape,
    transpose,
    zeros_like,
)
from unframe.backends.caffe2.registry import ops


@ops.register("Constant", since=1)
def constant_v1(node: ir.Node, ctx: ExportContext) -> None:
    array = ctx.need_known_value(node.outputs[0], "the Constant's value (sparse or string values)")
    ctx.make_constant_output(array, node)


@ops.register("Reshape", since=5)
def reshape_v5(node: ir.Node, ctx: ExportContext) -> None:
    shape = ctx.known_ints(node.inputs[1])
    allowzero = attr_int(node, "allowzero", 0)
    if shape is None:
        # Caffe2's Reshape reads a 0 as "copy this dim", which is ONNX's allowzero=0.
        if allowzero:
            _reshape_allowzero(node, ctx)
        else:
            reshape(ctx, ctx.input(0), ctx.input(1), ctx.output(node))
        return
    dtype = ctx.dtype(node.inputs[0]) or ir.DataType.FLOAT
    if allowzero and 0 in shape:
        # A 0 is a real zero dim, so the result is empty and its shape is the given one.
        if -1 in shape:
            raise ctx.error(f"allowzero=1 forbids a shape with both 0 and -1, got {shape}")
        ctx.make_constant_output(np.zeros(shape, dtype=dtype.numpy()), node)
        return
    out_shape = ctx.shape(node.outputs[0])
    if out_shape is not None and 0 in out_shape:
        # An empty result: Caffe2's Reshape reads a 0 as "copy this dim", so fill it instead.
        ctx.make_constant_output(np.zeros(out_shape, dtype=dtype.numpy()), node)
        return
    reshape(ctx, ctx.input(0), shape, ctx.output(node))


def _reshape_allowzero(node: ir.Node, ctx: ExportContext) -> None:
    """Reshape to a run-time shape whose 0s are real zero dims (allowzero=1).

    Caffe2's Reshape copies the input's dim for a 0, and a run-time shape may or may not hold
    one. ONNX forbids -1 beside a 0, and a 0 makes the result empty, so the input is empty too.
    The result is read from the flattened input by a Gather whose index tensor has the target
    shape: ``positions + base``, broadcast. Without a 0 in the shape, the positions are
    0 .. n - 1 reshaped to the shape (Caffe2 resolves any -1) and the base has shape 1, ..., 1;
    with one, the positions are one 0 of shape 1, ..., 1 and the base is an empty tensor of the
    shape itself, built by ConstantFill, which reads the shape's values as they are.
    """
    i64 = caffe2_dtype(ir.DataType.INT64)
    shape = ctx.input(1)
    zero, one = runtime.const64(ctx, 0), runtime.const64(ctx, 1)
    zeros = ctx.temp("Cast", [ctx.temp("EQ", [shape, zero], "is_zero")], "zeros", to=i64)
    count = ctx.temp("ReduceSum", [zeros], "count", axes=[0], keepdims=0)
    empty = ctx.temp("GT", [count, zero], "empty")
    flags = runtime.like_flag(ctx, empty, shape)
    ones = ctx.temp("ConstantFill", [shape], "ones", value=1, dtype=i64)
    base_shape = ctx.temp("Where", [flags, shape, ones], "base_shape")
    positions_shape = ctx.temp("Where", [flags, ones, shape], "positions_shape")
    size = ctx.temp("Size", [ctx.input(0)], "size")
    stop = ctx.temp("Add", [size, ctx.temp("Cast", [empty], "extra", to=i64)], "stop")
    positions = reshape(ctx, ctx.temp("Range", [zero, stop, one], "positions"), positions_shape)
    base = ctx.temp("ConstantFill", [base_shape], "base", input_as_shape=1, value=0, dtype=i64)
    indices = ctx.temp("Add", [positions, base], "indices")
    flat = reshape(ctx, ctx.input(0), [-1])
    ctx.emit("Gather", [flat, indices], [ctx.output(node)])


@ops.register("Flatten", since=1)
def flatten_v1(node: ir.Node, ctx: ExportContext) -> None:
    axis = attr_int(node, "axis", 1)
    if axis < 0:
        axis += ctx.need_rank(node.inputs[0])
    ctx.emit("Flatten", [ctx.input(0)], [ctx.output(node)], axis=axis)


@ops.register("Transpose", since=1)
def transpose_v1(node: ir.Node, ctx: ExportContext) -> None:
    perm = attr_ints(node, "perm")
    if perm is None:
        perm = list(reversed(range(ctx.need_rank(node.inputs[0]))))
    transpose(ctx, ctx.input(0), perm, ctx.dtype(node.inputs[0]), ctx.output(node))


@ops.register("Concat", since=4)
def concat_v4(node: ir.Node, ctx: ExportContext) -> None:
    rank = ctx.need_rank(node.inputs[0])
    axis = normalize_axis(ctx, attr_int(node, "axis", 0), rank)
    inputs = [ctx.blob(v) for v in node.inputs]
    ctx.emit("Concat", inputs, [ctx.output(node), ctx.fresh("split_info")], axis=axis)


def _split(node: ir.Node, ctx: ExportContext, sizes: list[int] | None) -> None:
    rank = ctx.need_rank(node.inputs[0])
    axis = normalize_axis(ctx, attr_int(node, "axis", 0), rank)
    if sizes is None:
        shapes = [ctx.shape(v) for v in node.outputs]
        if all(s is not None for s in shapes):
            sizes = [s[axis] for s in shapes if s is not None]
    if sizes is None:
        shape = ctx.need_shape(node.inputs[0], "to split it")
        count = len(node.outputs)
        chunk = -(-shape[axis] // count)
        sizes = [min(chunk, shape[axis] - i * chunk) for i in range(count)]
    outputs = [ctx.output(node, i) for i in range(len(node.outputs))]
    ctx.emit("Split", [ctx.input(0)], outputs, axis=axis, split=sizes)


@ops.register("Split", since=2, until=12)
def split_v2(node: ir.Node, ctx: ExportContext) -> None:
    _split(node, ctx, attr_ints(node, "split"))


@ops.register("Split", since=13)
def split_v13(node: ir.Node, ctx: ExportContext) -> None:
    sizes = ctx.known_ints(node.inputs[1]) if ctx.has_input(1) else None
    if ctx.has_input(1) and sizes is None:
        # Caffe2's Split takes the sizes as an int32 tensor too.
        rank = ctx.need_rank(node.inputs[0])
        axis = normalize_axis(ctx, attr_int(node, "axis", 0), rank)
        split = ctx.temp("Cast", [ctx.input(1)], "split", to=caffe2_dtype(ir.DataType.INT32))
        outputs = [ctx.output(node, i) for i in range(len(node.outputs))]
        ctx.emit("Split", [ctx.input(0), split], outputs, axis=axis)
        return
    _split(node, ctx, sizes)


def _slice(
    node: ir.Node,
    ctx: ExportContext,
    starts: list[int],
    ends: list[int],
    axes: list[int] | None,
    steps: list[int] | None,
) -> None:
    shape = ctx.need_shape(node.inputs[0], "to slice it")
    rank = len(shape)
    axes = [normalize_axis(ctx, a, rank) for a in (axes or range(len(starts)))]
    steps = steps or [1] * len(starts)
    begin, end, step = [0] * rank, list(shape), [1] * rank
    for axis, start, stop, stride in zip(axes, starts, ends, steps, strict=True):
        begin[axis], end[axis], step[axis] = slice(start, stop, stride).indices(shape[axis])
    blob = ctx.input(0)
    if all(s == 1 for s in step):
        ends_arg = [max(e, b) for b, e in zip(begin, end, strict=True)]
        ctx.emit("Slice", [blob], [ctx.output(node)], starts=begin, ends=ends_arg)
        return
    # Caffe2's Slice has no steps: gather the strided indices along each such axis instead.
    strided = [a for a in range(rank) if step[a] != 1 or (begin[a], end[a]) != (0, shape[a])]
    for count, axis in enumerate(strided):
        indices = np.arange(begin[axis], end[axis], step[axis], dtype=np.int64)
        index_blob = ctx.make_constant(indices, "indices")
        last = count == len(strided) - 1
        out = ctx.output(node) if last else ctx.fresh("sliced")
        ctx.emit("Gather", [blob, index_blob], [out], axis=axis)
        blob = out


@ops.register("Slice", since=1, until=9)
def slice_v1(node: ir.Node, ctx: ExportContext) -> None:
    starts, ends = attr_ints(node, "starts") or [], attr_ints(node, "ends") or []
    _slice(node, ctx, starts, ends, attr_ints(node, "axes"), None)


@ops.register("Slice", since=10)
def slice_v10(node: ir.Node, ctx: ExportContext) -> None:
    params = [ctx.known_ints(node.inputs[i]) if ctx.has_input(i) else None for i in range(1, 5)]
    if any(p is None and ctx.has_input(i) for i, p in enumerate(params, start=1)):
        _runtime_slice(node, ctx)
        return
    starts, ends, axes, steps = params
    _slice(node, ctx, starts or [], ends or [], axes, steps)


def _runtime_slice(node: ir.Node, ctx: ExportContext) -> None:
    """Slice with run-time starts, ends, axes or steps: per axis, clamp as ONNX does, then
    gather the positions ``Range(start, end, step)``."""
    shape = ctx.shape(node.inputs[0])
    rank = ctx.need_rank(node.inputs[0], "to slice it")
    count = ctx.need_shape(node.inputs[1], "for the number of sliced axes")[0]
    axes = runtime.axes_input(ctx, node, 3, rank) if ctx.has_input(3) else list(range(count))
    starts, ends = runtime.int64(ctx, node.inputs[1]), runtime.int64(ctx, node.inputs[2])  # type: ignore[arg-type]
    steps = runtime.int64(ctx, node.inputs[4]) if ctx.has_input(4) else None  # type: ignore[arg-type]
    blob = ctx.input(0)
    dims = ctx.temp("Shape", [blob], "dims") if shape is None else ""
    for axis in axes if isinstance(axes, list) else range(rank):
        if shape is not None:
            size = runtime.const64(ctx, shape[axis])
        else:
            size = ctx.temp("Gather", [dims, runtime.const64(ctx, axis)], "size")
        last = ctx.temp("Sub", [size, runtime.const64(ctx, 1)], "last")
        bounds = []
        for values, default in ((starts, runtime.const64(ctx, 0)), (ends, size)):
            raw = runtime.axis_param(ctx, values, axes, rank, axis, default)
            negative = ctx.temp("LT", [raw, runtime.const64(ctx, 0)], "negative")
            counted = ctx.temp("Where", [negative, ctx.temp("Add", [raw, size]), raw], "bound")
            bounds.append(counted)
        step = runtime.const64(ctx, 1)
        if steps is not None:
            step = runtime.axis_param(ctx, steps, axes, rank, axis, 1)
        # Forward steps stop at [0, dim]; backward ones start at most at dim - 1 and may run to -1.
        forward = ctx.temp("GT", [step, runtime.const64(ctx, 0)], "forward")
        start = ctx.temp("Where", [forward, runtime.clamp(ctx, bounds[0], 0, size),
                                   runtime.clamp(ctx, bounds[0], 0, last)], "start")  # fmt: skip
        end = ctx.temp("Where", [forward, runtime.clamp(ctx, bounds[1], 0, size),
                                 runtime.clamp(ctx, bounds[1], -1, last)], "end")  # fmt: skip
        positions = ctx.temp("Range", [start, end, step], "positions")
        blob = ctx.temp("Gather", [blob, positions], "sliced", axis=axis)
    ctx.emit("Copy", [blob], [ctx.output(node)])


def _squeeze(node: ir.Node, ctx: ExportContext, axes: list[int] | None) -> None:
    if axes is None:
        shape = ctx.need_shape(node.inputs[0], "to find the axes to squeeze")
        axes = [i for i, d in enumerate(shape) if d == 1]
    rank = ctx.need_rank(node.inputs[0])
    dims = sorted(normalize_axis(ctx, a, rank) for a in axes)
    ctx.emit("Squeeze", [ctx.input(0)], [ctx.output(node)], dims=dims)


@ops.register("Squeeze", since=1, until=12)
def squeeze_v1(node: ir.Node, ctx: ExportContext) -> None:
    _squeeze(node, ctx, attr_ints(node, "axes"))


@ops.register("Squeeze", since=13)
def squeeze_v13(node: ir.Node, ctx: ExportContext) -> None:
    if ctx.has_input(1) and ctx.known_value(node.inputs[1]) is None:
        _runtime_squeeze(node, ctx)
        return
    _squeeze(node, ctx, ctx.known_ints(node.inputs[1]) if ctx.has_input(1) else None)


def _runtime_squeeze(node: ir.Node, ctx: ExportContext) -> None:
    """Run-time axes: reshape to the input's dims less the named ones (all 1s if none are)."""
    rank = ctx.need_rank(node.inputs[0], "to squeeze it")
    axes = ctx.temp("Reshape", [runtime.int64(ctx, node.inputs[1])], "axes", shape=[-1])  # type: ignore[arg-type]
    dims = ctx.temp("Shape", [ctx.input(0)], "dims")
    named = ctx.fresh("named")
    columns = [
        ctx.temp("Reshape", [runtime.axis_flag(ctx, axes, rank, axis)], "named", shape=[1])
        for axis in range(rank)
    ]
    ctx.emit("Concat", columns, [named, ctx.fresh("split_info")], axis=0)
    none = ctx.temp("EQ", [ctx.temp("Size", [axes], "count"), runtime.const64(ctx, 0)], "none")
    ones = ctx.temp("EQ", [dims, runtime.const64(ctx, 1)], "ones")
    every_one = ctx.temp("And", [runtime.like_flag(ctx, none, ones), ones], "ones")
    dropped = ctx.temp("Or", [named, every_one], "dropped")
    kept = ctx.temp("BooleanMask", [dims, ctx.temp("Not", [dropped], "kept")], "kept")
    reshape(ctx, ctx.input(0), kept, ctx.output(node))


def _unsqueeze(node: ir.Node, ctx: ExportContext, axes: list[int]) -> None:
    rank = ctx.need_rank(node.inputs[0]) + len(axes)
    dims = sorted(normalize_axis(ctx, a, rank) for a in axes)
    ctx.emit("ExpandDims", [ctx.input(0)], [ctx.output(node)], dims=dims)


@ops.register("Unsqueeze", since=1, until=12)
def unsqueeze_v1(node: ir.Node, ctx: ExportContext) -> None:
    _unsqueeze(node, ctx, attr_ints(node, "axes") or [])


@ops.register("Unsqueeze", since=13)
def unsqueeze_v13(node: ir.Node, ctx: ExportContext) -> None:
    axes = ctx.known_ints(node.inputs[1])
    if axes is None:
        _runtime_unsqueeze(node, ctx)
        return
    _unsqueeze(node, ctx, axes)


def _runtime_unsqueeze(node: ir.Node, ctx: ExportContext) -> None:
    """Run-time axes: each output dim is 1 where named, else the next input dim in order."""
    rank = ctx.need_rank(node.inputs[0], "to unsqueeze it")
    out_rank = rank + ctx.need_shape(node.inputs[1], "for the number of new axes")[0]
    axes = runtime.int64(ctx, node.inputs[1])  # type: ignore[arg-type]
    dims = ctx.temp("Shape", [ctx.input(0)], "dims")
    one = runtime.const64(ctx, 1)
    inserted = runtime.const64(ctx, 0)  # new axes before the current position
    columns = []
    for position in range(out_rank):
        named = runtime.axis_flag(ctx, axes, out_rank, position)
        source = ctx.temp("Sub", [runtime.const64(ctx, position), inserted], "source")
        source = runtime.clamp(ctx, source, 0, max(rank - 1, 0))
        dim = ctx.temp("Gather", [dims, source], "dim") if rank else one
        columns.append(ctx.temp("Reshape", [ctx.temp("Where", [named, one, dim], "dim")],
                                "dim", shape=[1]))  # fmt: skip
        count = ctx.temp("Cast", [named], "count", to=caffe2_dtype(ir.DataType.INT64))
        inserted = ctx.temp("Add", [inserted, count], "inserted")
    shape = ctx.fresh("shape")
    ctx.emit("Concat", columns, [shape, ctx.fresh("split_info")], axis=0)
    reshape(ctx, ctx.input(0), shape, ctx.output(node))


@ops.register("Tile", since=6)
def tile_v6(node: ir.Node, ctx: ExportContext) -> None:
    repeats = ctx.known_ints(node.inputs[1])
    blob, back = carried(ctx, ctx.input(0), ctx.dtype(node.inputs[0]), _TILE_TYPES,
                         "Tile (tile_op.cc)")  # fmt: skip
    if back is not None:
        # Tiled in a type Caffe2's Tile takes, then cast back.
        wide = ctx.fresh("tiled")
        _tile(node, ctx, blob, repeats, wide)
        carried_back(ctx, wide, back, ctx.output(node))
        return
    _tile(node, ctx, blob, repeats, ctx.output(node))


#: TileOp<CPUContext>: at::Half, uint8, int32, int64, float, double, std::string (tile_op.cc).
_TILE_TYPES = frozenset({ir.DataType.FLOAT16, ir.DataType.UINT8, ir.DataType.INT32,
                         ir.DataType.INT64, ir.DataType.FLOAT, ir.DataType.DOUBLE,
                         ir.DataType.STRING})  # fmt: skip


def _tile(
    node: ir.Node, ctx: ExportContext, blob: str, repeats: list[int] | None, output: str
) -> None:
    if repeats is None:
        # Run-time repeats: Caffe2's Tile also takes its tiles and axis as tensors, one axis each.
        counts = runtime.int64(ctx, node.inputs[1])  # type: ignore[arg-type]
        rank = ctx.need_rank(node.inputs[0], "to tile it")
        for position in range(rank):
            axis_blob = ctx.make_constant(np.array([position], dtype=np.int64), "axis")
            tiles = ctx.temp("Gather", [counts, axis_blob], "tiles")
            tiled = output if position == rank - 1 else ctx.fresh("tiled")
            ctx.emit("Tile", [blob, tiles, axis_blob], [tiled])
            blob = tiled
        return
    axes = [axis for axis, count in enumerate(repeats) if count != 1]
    if not axes:
        ctx.emit("Copy", [blob], [output])
    for index, axis in enumerate(axes):
        out = output if index == len(axes) - 1 else ctx.fresh("tiled")
        ctx.emit("Tile", [blob], [out], tiles=repeats[axis], axis=axis)
        blob = out


@ops.register("Expand", since=8)
def expand_v8(node: ir.Node, ctx: ExportContext) -> None:
    ctx.emit("Expand", [ctx.input(0), ctx.input(1)], [ctx.output(node)])


@ops.register("Gather", since=1)
def gather_v1(node: ir.Node, ctx: ExportContext) -> None:
    rank = ctx.need_rank(node.inputs[0])
    axis = normalize_axis(ctx, attr_int(node, "axis", 0), rank)
    indices = ctx.known_value(node.inputs[1])
    if indices is not None and (indices < 0).any():
        shape = ctx.need_shape(node.inputs[0], "to wrap negative indices")
        fixed = np.where(indices < 0, indices + shape[axis], indices).astype(indices.dtype)
        index_blob = ctx.make_constant(fixed, "indices")
    else:
        index_blob = ctx.input(1)
    ctx.emit("Gather", [ctx.input(0), index_blob], [ctx.output(node)], axis=axis, wrap_indices=1)


@ops.register("Cast", since=6)
def cast_v6(node: ir.Node, ctx: ExportContext) -> None:
    to = ir.DataType(attr_int(node, "to", 1))
    caffe2_dtype(ctx.dtype(node.inputs[0]), "the Cast's input")
    ctx.emit("Cast", [ctx.input(0)], [ctx.output(node)], to=caffe2_dtype(to, "Cast"))


@ops.register("CastLike", since=15)
def cast_like_v15(node: ir.Node, ctx: ExportContext) -> None:
    caffe2_dtype(ctx.dtype(node.inputs[0]), "the Cast's input")
    to = caffe2_dtype(ctx.dtype(node.inputs[1]), "CastLike's target")
    ctx.emit("Cast", [ctx.input(0)], [ctx.output(node)], to=to)


@ops.register("Shape", since=1)
def shape_v1(node: ir.Node, ctx: ExportContext) -> None:
    start, end = attr_int(node, "start", 0), node.attributes.get("end")
    if start == 0 and end is None:
        ctx.emit("Shape", [ctx.input(0)], [ctx.output(node)])
        return
    rank = ctx.need_rank(node.inputs[0])
    stop = rank if end is None else attr_int(node, "end", rank)
    axes = list(range(rank))[slice(start, stop)]
    if not axes:
        ctx.make_constant_output(np.zeros(0, dtype=np.int64), node)
        return
    ctx.emit("Shape", [ctx.input(0)], [ctx.output(node)], axes=axes)


@ops.register("Size", since=1)
def size_v1(node: ir.Node, ctx: ExportContext) -> None:
    ctx.emit("Size", [ctx.input(0)], [ctx.output(node)])


@ops.register("ConstantOfShape", since=9)
def constant_of_shape_v9(node: ir.Node, ctx: ExportContext) -> None:
    attr = node.attributes.get("value")
    value = np.asarray(attr.as_tensor().numpy()).reshape(-1) if attr is not None else None  # type: ignore[union-attr]
    if value is None:
        value = np.zeros(1, dtype=np.float32)
    shape = ctx.known_ints(node.inputs[0])
    if shape is not None:
        ctx.make_constant_output(np.full(shape, value[0], dtype=value.dtype), node)
        return
    dtype = ir.DataType.from_numpy(value.dtype)
    fill: float | int = float(value[0]) if dtype.is_floating_point() else int(value[0])
    ctx.emit(
        "ConstantFill", [ctx.input(0)], [ctx.output(node)], input_as_shape=1, value=fill,
        dtype=caffe2_dtype(dtype, "ConstantOfShape"),
    )  # fmt: skip


@ops.register("Range", since=11)
def range_v11(node: ir.Node, ctx: ExportContext) -> None:
    ctx.emit("Range", [ctx.input(i) for i in range(3)], [ctx.output(node)])


@ops.register("Clip", since=6, until=10)
def clip_v6(node: ir.Node, ctx: ExportContext) -> None:
    low = attr_float(node, "min", -3.4028234663852886e38)
    high = attr_float(node, "max", 3.4028234663852886e38)
    dtype = ctx.dtype(node.inputs[0]) or ir.DataType.FLOAT
    if dtype not in (ir.DataType.FLOAT, ir.DataType.DOUBLE):
        raise ctx.error(f"Caffe2 registers Clip for float only (clip_op.cc), not {dtype.name}")
    clipped = runtime.bounded(ctx, ctx.input(0), low, high, dtype)
    ctx.emit("Copy", [clipped], [ctx.output(node)])


@ops.register("Clip", since=11)
def clip_v11(node: ir.Node, ctx: ExportContext) -> None:
    x = node.inputs[0]
    bounds = [node.inputs[i] if ctx.has_input(i) else None for i in (1, 2)]
    consts = [ctx.known_value(b) if b is not None else None for b in bounds]
    dtype = ctx.dtype(x) or ir.DataType.FLOAT
    floating = dtype.is_floating_point()
    if dtype == ir.DataType.DOUBLE:
        # Caffe2's Clip, Max and Min are float only (clip_op.cc, minmax_ops.cc): comparisons
        # and Where, as for integers.
        _clip_integers(node, ctx, bounds, ctx.make_constant(np.array(ctx.need_shape(
            x, "to broadcast the clip bounds"), dtype=np.int64), "shape"))  # fmt: skip
        return
    if floating and dtype != ir.DataType.FLOAT:
        raise ctx.error(f"Caffe2 registers Clip for float only (clip_op.cc), not {dtype.name}")
    if floating and all(b is None or c is not None for b, c in zip(bounds, consts, strict=True)):
        args = {
            name: float(c) for name, c in zip(("min", "max"), consts, strict=True) if c is not None
        }
        ctx.emit("Clip", [ctx.blob(x)], [ctx.output(node)], **args)
        return
    # Run-time or integer bounds: max(x, min) then min(.., max), bounds broadcast to x's shape.
    shape = ctx.need_shape(x, "to broadcast the clip bounds")
    shape_blob = ctx.make_constant(np.array(shape, dtype=np.int64), "shape")
    blob = ctx.blob(x)
    if not floating:
        _clip_integers(node, ctx, bounds, shape_blob)
        return
    present = [(op, b) for op, b in zip(("Max", "Min"), bounds, strict=True) if b is not None]
    if not present:
        ctx.emit("Copy", [blob], [ctx.output(node)])
    for index, (op_type, bound) in enumerate(present):
        wide = ctx.temp("Expand", [ctx.blob(bound), shape_blob], "bound")
        out = ctx.output(node) if index == len(present) - 1 else ctx.fresh("clipped")
        ctx.emit(op_type, [blob, wide], [out])
        blob = out


def _clip_integers(
    node: ir.Node, ctx: ExportContext, bounds: list[ir.Value | None], shape: str
) -> None:
    """Clip of integers: Caffe2's Max, Min and Clip are float-only, so each bound is applied by
    a comparison and Where, in int64 (8- and 16-bit integers have no Where or Expand kernel)."""
    dtype = ctx.dtype(node.inputs[0]) or ir.DataType.INT64
    wide = dtype in NARROW_INTEGERS

    def widened(blob: str) -> str:
        return cast(ctx, blob, ir.DataType.INT64) if wide else blob

    blob = widened(ctx.input(0))
    for compare, bound in zip(("LT", "GT"), bounds, strict=True):
        if bound is None:
            continue
        limit = expand(ctx, widened(ctx.blob(bound)), shape)
        beyond = ctx.temp(compare, [blob, limit], "beyond")
        blob = ctx.temp("Where", [beyond, limit, blob], "clipped")
    if wide:
        blob = cast(ctx, blob, dtype)
    ctx.emit("Copy", [blob], [ctx.output(node)])


@ops.register("DepthToSpace", since=1)
def depth_to_space_v1(node: ir.Node, ctx: ExportContext) -> None:
    n, c, h, w = ctx.need_shape(node.inputs[0], "to rearrange it")
    b = attr_int(node, "blocksize", 1)
    if attr_str(node, "mode", "DCR") == "DCR":
        split, perm = [n, b, b, c // (b * b), h, w], [0, 3, 4, 1, 5, 2]
    else:
        split, perm = [n, c // (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3]
    grouped = reshape(ctx, ctx.input(0), split)
    moved = ctx.temp("Transpose", [grouped], "moved", axes=perm)
    reshape(ctx, moved, [n, c // (b * b), h * b, w * b], ctx.output(node))


@ops.register("SpaceToDepth", since=1)
def space_to_depth_v1(node: ir.Node, ctx: ExportContext) -> None:
    n, c, h, w = ctx.need_shape(node.inputs[0], "to rearrange it")
    b = attr_int(node, "blocksize", 1)
    grouped = reshape(ctx, ctx.input(0), [n, c, h // b, b, w // b, b])
    crd = attr_str(node, "mode", "DCR") == "CRD"
    perm = [0, 1, 3, 5, 2, 4] if crd else [0, 3, 5, 1, 2, 4]
    moved = ctx.temp("Transpose", [grouped], "moved", axes=perm)
    reshape(ctx, moved, [n, c * b * b, h // b, w // b], ctx.output(node))


@ops.register("TopK", since=10)
def top_k_v10(node: ir.Node, ctx: ExportContext) -> None:
    rank = ctx.need_rank(node.inputs[0])
    axis = normalize_axis(ctx, attr_int(node, "axis", -1), rank)
    k_const = ctx.known_ints(node.inputs[1])
    if not attr_int(node, "sorted", 1):
        raise ctx.error("sorted=0 has no Caffe2 equivalent (Caffe2's TopK always sorts)")
    values, indices = ctx.output(node, 0), ctx.output(node, 1)
    if k_const is not None:
        _top_k(node, ctx, k_const[0], axis, values, indices)
        return
    # A run-time k: sort the whole axis, then keep its first k (a Slice with a tensor end).
    size = ctx.need_shape(node.inputs[0], "to sort the whole axis")[axis]
    everything = ctx.fresh("values"), ctx.fresh("indices")
    _top_k(node, ctx, size, axis, *everything)
    k = ctx.temp("Reshape", [runtime.int64(ctx, node.inputs[1])], "k", shape=[1])  # type: ignore[arg-type]
    ends = [ctx.make_constant(np.full(axis, -1, dtype=np.int64), "ends"), k,
            ctx.make_constant(np.full(rank - axis - 1, -1, dtype=np.int64), "ends")]  # fmt: skip
    end = ctx.fresh("ends")
    ctx.emit("Concat", ends, [end, ctx.fresh("split_info")], axis=0)
    start = ctx.make_constant(np.zeros(rank, dtype=np.int64), "starts")
    for whole, out in zip(everything, (values, indices), strict=True):
        ctx.emit("Slice", [whole, start, end], [out])


def _top_k(node: ir.Node, ctx: ExportContext, k: int, axis: int, values: str, indices: str) -> None:
    x = ctx.input(0)
    dtype = ctx.dtype(node.inputs[0])
    if dtype not in (None, ir.DataType.FLOAT):
        # No exact form: float cannot hold every int32, int64 or double value.
        raise ctx.error(f"Caffe2 registers TopK for float only (top_k.cc), not {dtype.name}")
    if attr_int(node, "largest", 1):
        ctx.emit("TopK", [x], [values, indices], k=k, axis=axis)
        return
    # The k smallest are the k largest of -x; negation is exact.
    negated = ctx.temp("TopK", [ctx.temp("Negative", [x])], "top", k=k, axis=axis)
    ctx.predict.op[-1].output.append(indices)
    ctx.emit("Negative", [negated], [values])


@ops.register("Trilu", since=14)
def trilu_v14(node: ir.Node, ctx: ExportContext) -> None:
    x = node.inputs[0]
    shape = ctx.need_shape(x, "to build the triangle mask")
    rows, cols = shape[-2], shape[-1]
    upper = attr_int(node, "upper", 1)
    # Column minus row for each position; the triangle is where it is >= k (upper) or <= k.
    offsets = (np.arange(cols)[None, :] - np.arange(rows)[:, None]).astype(np.int64)
    k = ctx.known_value(node.inputs[1]) if ctx.has_input(1) else np.array(0)
    if k is not None:
        mask = offsets >= int(k) if upper else offsets <= int(k)
        mask_blob = ctx.make_constant(np.broadcast_to(mask, shape).copy(), "mask")
    else:
        compare = "GE" if upper else "LE"
        small = ctx.temp(compare, [ctx.make_constant(offsets, "offsets"), ctx.input(1)], "mask")
        shape_blob = ctx.make_constant(np.array(shape, dtype=np.int64), "shape")
        mask_blob = expand(ctx, small, shape_blob, flag=True)
    assert x is not None  # Trilu's data input is required by its schema
    ctx.emit("Where", [mask_blob, ctx.blob(x), zeros_like(ctx, x)], [ctx.output(node)])


@ops.register("EyeLike", since=9)
def eye_like_v9(node: ir.Node, ctx: ExportContext) -> None:
    rows, cols = ctx.need_shape(node.inputs[0], "to build the identity")
    dtype_attr = node.attributes.get("dtype")
    dtype = (
        ir.DataType(attr_int(node, "dtype", 1))
        if dtype_attr is not None
        else ctx.dtype(node.inputs[0])
    )
    if dtype is None:
        raise ctx.error("needs the element type")
    eye = np.eye(rows, cols, k=attr_int(node, "k", 0), dtype=dtype.numpy())
    ctx.make_constant_output(eye, node)
