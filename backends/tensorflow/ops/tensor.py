"""Shape and data movement: Reshape, Flatten, Transpose, Concat, Split, Slice, Gather, Squeeze,
Unsqueeze, Expand, Shape, Constant, ConstantOfShape, Pad, Tile, Range.

Transpose folds into the layout (no op where it undoes one); Concat and Pad keep a channels-last
layout with their axes rewritten; Shape reads the logical dims off the held tensor. The others
read their input in ONNX's layout (``ctx.input``), which is exact by construction.
"""

from __future__ import annotations

from typing import Any

from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    Physical,
    elementwise_inputs,
    inverse,
    ir,
    normalize_axis,
    np,
    ops,
    wrap,
)

_INT64_MAX = np.iinfo(np.int64).max


def _as_int64(ctx: ExportContext, tensor: Any) -> Any:
    return ctx.tf.cast(tensor, ctx.tf.int64)


def _reshape(ctx: ExportContext, allowzero: bool) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    shape = ctx.constant_input(1)
    if shape is not None:
        dims: list[Any] = [int(v) for v in shape.reshape(-1)]
        if not allowzero and 0 in dims:
            static = x.shape.as_list()
            dynamic = tf.shape(x, out_type=tf.int64)
            dims = [
                (static[i] if static[i] is not None else dynamic[i]) if d == 0 else d
                for i, d in enumerate(dims)
            ]
            if any(not isinstance(d, int) for d in dims):
                return [tf.reshape(x, tf.stack([tf.cast(d, tf.int64) for d in dims]))]
        return [tf.reshape(x, dims)]
    target = _as_int64(ctx, ctx.input(1))
    if not allowzero:
        source = tf.shape(x, out_type=tf.int64)
        positions = tf.minimum(
            tf.range(tf.size(target, out_type=tf.int64)), tf.size(source, out_type=tf.int64) - 1
        )
        target = tf.where(tf.equal(target, 0), tf.gather(source, positions), target)
    return [tf.reshape(x, target)]


@ops.register("Reshape", since=5)
def reshape_v5(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _reshape(ctx, allowzero=False)


@ops.register("Reshape", since=14)
def reshape_v14(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _reshape(ctx, allowzero=bool(ctx.attr("allowzero", 0)))


@ops.register("Flatten", since=13)
def flatten_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    rank = len(x.shape)
    axis = normalize_axis(int(ctx.attr("axis", 1)), rank)
    shape = tf.shape(x, out_type=tf.int64)
    outer = tf.reduce_prod(shape[:axis])
    inner = tf.reduce_prod(shape[axis:])
    static = x.shape.as_list()
    if all(d is not None for d in static[axis:]):
        return [tf.reshape(x, tf.stack([outer, int(np.prod(static[axis:], dtype=np.int64))]))]
    return [tf.reshape(x, tf.stack([outer, inner]))]


@ops.register("Transpose", since=13)
def transpose_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    held = ctx.physical(0)
    rank = len(held.tensor.shape)
    perm = tuple(ctx.ints("perm", list(reversed(range(rank)))) or reversed(range(rank)))
    if held.perm is None:
        return [ctx.tf.transpose(held.tensor, perm)]
    # The output is the held tensor itself, in the layout that composes both permutations.
    back = inverse(perm)
    composed = tuple(back[axis] for axis in held.perm)
    if composed == tuple(range(rank)):
        return [held.tensor]
    return [Physical(held.tensor, composed)]


@ops.register("Concat", since=13)
def concat_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    tensors, perm = elementwise_inputs(ctx)
    rank = len(tensors[0].shape)
    axis = normalize_axis(int(ctx.attr("axis")), rank)
    if perm is not None:
        axis = perm.index(axis)
    return [wrap(ctx.tf.concat(tensors, axis=axis), perm)]


def _split(ctx: ExportContext, node: ir.Node, sizes: list[int] | None) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    axis = normalize_axis(int(ctx.attr("axis", 0)), len(x.shape))
    count = len(node.outputs)
    if sizes is None:
        length = x.shape.as_list()[axis]
        if length is None:
            raise ctx.error("Split without sizes needs a static length on its axis")
        chunk = -(-length // count)
        sizes = [chunk] * (count - 1) + [length - chunk * (count - 1)]
    return list(tf.split(x, sizes, axis=axis))


@ops.register("Split", since=13)
def split_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    sizes = ctx.int_list(1) if ctx.has_input(1) else None
    return _split(ctx, node, sizes)


@ops.register("Split", since=18)
def split_v18(node: ir.Node, ctx: ExportContext) -> Outputs:
    sizes = ctx.int_list(1) if ctx.has_input(1) else None
    return _split(ctx, node, sizes)


@ops.register("Slice", since=13)
def slice_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    rank = len(x.shape)
    starts = _as_int64(ctx, ctx.input(1))
    ends = _as_int64(ctx, ctx.input(2))
    count = int(starts.shape[0]) if starts.shape[0] is not None else None
    if ctx.has_input(3):
        axes = [normalize_axis(a, rank) for a in ctx.int_list(3)]
    else:
        if count is None:
            raise ctx.error("Slice without axes needs starts of a static length")
        axes = list(range(count))
    steps = _as_int64(ctx, ctx.input(4)) if ctx.has_input(4) else tf.ones_like(starts)
    begin: list[Any] = [0] * rank
    end: list[Any] = [0] * rank
    stride: list[Any] = [1] * rank
    begin_mask = end_mask = 0
    dims = tf.shape(x, out_type=tf.int64)
    for axis in range(rank):
        if axis not in axes:
            begin_mask |= 1 << axis
            end_mask |= 1 << axis
    for position, axis in enumerate(axes):
        step = steps[position]
        size = dims[axis]
        start, stop = starts[position], ends[position]
        # ONNX clamps starts and ends to the axis as numpy does; a stop past the front with a
        # negative step means "through index 0", which strided_slice spells with its end mask,
        # so clamp explicitly and express "before 0" as -size - 1 (python's -len - 1).
        start = tf.where(start < 0, start + size, start)
        stop = tf.where(stop < 0, stop + size, stop)
        start = tf.where(
            step > 0, tf.clip_by_value(start, 0, size), tf.clip_by_value(start, 0, size - 1)
        )
        stop = tf.where(
            step > 0, tf.clip_by_value(stop, 0, size), tf.clip_by_value(stop, -1, size - 1)
        )
        stop = tf.where(stop < 0, -size - 1, stop)
        begin[axis], end[axis], stride[axis] = start, stop, step
    result = tf.strided_slice(
        x,
        tf.stack([tf.cast(b, tf.int64) for b in begin]),
        tf.stack([tf.cast(e, tf.int64) for e in end]),
        tf.stack([tf.cast(s, tf.int64) for s in stride]),
        begin_mask=begin_mask,
        end_mask=end_mask,
    )
    return [result]


@ops.register("Gather", since=13)
def gather_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    axis = normalize_axis(int(ctx.attr("axis", 0)), len(x.shape))
    constant = ctx.constant_input(1)
    if constant is not None and (constant >= 0).all():
        indices = ctx.make_constant(constant.astype(np.int64), "indices")
    else:
        indices = _as_int64(ctx, ctx.input(1))
        size = tf.shape(x, out_type=tf.int64)[axis]
        indices = tf.where(indices < 0, indices + size, indices)
    return [tf.gather(x, indices, axis=axis)]


@ops.register("Squeeze", since=13)
def squeeze_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    x = ctx.input(0)
    if not ctx.has_input(1):
        return [ctx.tf.squeeze(x)]
    axes = [normalize_axis(a, len(x.shape)) for a in ctx.int_list(1)]
    return [ctx.tf.squeeze(x, axis=axes)]


@ops.register("Unsqueeze", since=13)
def unsqueeze_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    x = ctx.input(0)
    rank = len(x.shape) + len(ctx.int_list(1))
    for axis in sorted(normalize_axis(a, rank) for a in ctx.int_list(1)):
        x = ctx.tf.expand_dims(x, axis)
    return [x]


@ops.register("Expand", since=13)
def expand_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    shape = _as_int64(ctx, ctx.input(1))
    target = tf.broadcast_dynamic_shape(tf.shape(x, out_type=tf.int64), shape)
    return [tf.broadcast_to(x, target)]


def _shape(ctx: ExportContext, start: int, end: int | None) -> Outputs:
    tf = ctx.tf
    held = ctx.physical(0)
    shape = tf.shape(held.tensor, out_type=tf.int64)
    if held.perm is not None:
        shape = tf.gather(shape, inverse(held.perm))
    rank = len(held.tensor.shape)
    start = max(0, min(rank, normalize_axis(start, rank)))
    stop = rank if end is None else max(0, min(rank, normalize_axis(end, rank)))
    return [shape[start:stop]]


@ops.register("Shape", since=1)
def shape_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _shape(ctx, 0, None)


@ops.register("Shape", since=15)
def shape_v15(node: ir.Node, ctx: ExportContext) -> Outputs:
    end = ctx.attr("end", None)
    return _shape(ctx, int(ctx.attr("start", 0)), None if end is None else int(end))


@ops.register("Size", since=13)
def size_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    return [ctx.tf.size(ctx.physical(0).tensor, out_type=ctx.tf.int64)]


@ops.register("Constant", since=13)
def constant_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    value = node.outputs[0].const_value
    if value is None:
        raise ctx.error("this Constant's value form is not converted")
    return [ctx.make_constant(np.asarray(value.numpy()), node.outputs[0].name or "const")]


@ops.register("ConstantOfShape", since=9)
def constant_of_shape_v9(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    fill = ctx.attr("value", None)
    array = np.zeros(1, np.float32) if fill is None else np.asarray(fill).reshape(-1)
    value = tf.constant(array[0], dtype=tf.as_dtype(array.dtype))
    return [tf.fill(_as_int64(ctx, ctx.input(0)), value)]


@ops.register("Pad", since=13)
def pad_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _pad(ctx, None)


@ops.register("Pad", since=18)
def pad_v18(node: ir.Node, ctx: ExportContext) -> Outputs:
    axes = ctx.int_list(3) if ctx.has_input(3) else None
    return _pad(ctx, axes)


def _pad(ctx: ExportContext, axes: list[int] | None) -> Outputs:
    tf = ctx.tf
    mode = ctx.attr("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    modes = {"constant": "CONSTANT", "reflect": "REFLECT"}
    if mode not in modes:
        raise ctx.error(f"Pad mode {mode!r} is not converted yet")
    pads = ctx.int_list(1)
    held = ctx.physical(0)
    rank = len(held.tensor.shape)
    axes = [normalize_axis(a, rank) for a in (axes if axes is not None else range(rank))]
    count = len(axes)
    per_axis = [[0, 0] for _ in range(rank)]
    for position, axis in enumerate(axes):
        per_axis[axis] = [pads[position], pads[position + count]]
    if any(p < 0 for pair in per_axis for p in pair):
        raise ctx.error("negative pads (cropping) are not converted yet")
    fill = ctx.constant_input(2) if ctx.has_input(2) else None
    if ctx.has_input(2) and fill is None:
        raise ctx.error("the pad value must be a constant")
    value = 0 if fill is None or fill.size == 0 else fill.reshape(-1)[0]
    # Padding is layout-agnostic: the same pads, on the axes where the held tensor has them.
    physical = per_axis if held.perm is None else [per_axis[axis] for axis in held.perm]
    result = tf.pad(held.tensor, physical, mode=modes[mode], constant_values=value)
    return [wrap(result, held.perm)]


@ops.register("Tile", since=13)
def tile_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    return [ctx.tf.tile(ctx.input(0), _as_int64(ctx, ctx.input(1)))]


@ops.register("Range", since=11)
def range_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    start, limit, delta = ctx.input(0), ctx.input(1), ctx.input(2)
    return [tf.range(start, limit, delta, dtype=start.dtype)]
