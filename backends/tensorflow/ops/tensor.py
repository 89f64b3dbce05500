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
    channels_last,
    elementwise_inputs,
    for_tflite,
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


@ops.register("Flatten", since=1)
def flatten_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
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


@ops.register("Transpose", since=1)
def transpose_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    held = ctx.physical(0)
    given = ctx.ints("perm", [])
    # The perm says the rank where the input's is not known statically.
    rank = len(given) if given else len(held.tensor.shape)
    perm = tuple(given or reversed(range(rank)))
    if held.perm is None:
        transposed = ctx.tf.transpose(held.tensor, perm)
        if rank >= 3 and inverse(perm) == channels_last(rank):
            # Channels-last to ONNX's NCHW (how tf2onnx opens a Keras model): the output stays
            # held channels-last, so a Conv reading it needs no Transpose back; other readers
            # get the model's own Transpose (unused ones are pruned from the traced graph).
            ctx.state.logical[node.outputs[0]] = transposed
            return [Physical(held.tensor, inverse(perm))]
        return [transposed]
    # The output is the held tensor itself, in the layout that composes both permutations.
    back = inverse(perm)
    composed = tuple(back[axis] for axis in held.perm)
    if composed == tuple(range(rank)):
        return [held.tensor]
    return [Physical(held.tensor, composed)]


@ops.register("Concat", since=4)
def concat_v4(node: ir.Node, ctx: ExportContext) -> Outputs:
    tensors, perm = elementwise_inputs(ctx)
    # Any input's rank will do (they share it); a non-negative axis needs none.
    rank = next((t.shape.rank for t in tensors if t.shape.rank is not None), None)
    axis = int(ctx.attr("axis"))
    if rank is not None:
        axis = normalize_axis(axis, rank)
    elif axis < 0:
        raise ctx.error("Concat on a negative axis needs its inputs' rank")
    if perm is not None:
        axis = perm.index(axis)
    return [wrap(ctx.tf.concat(tensors, axis=axis), perm)]


def _split(ctx: ExportContext, node: ir.Node, sizes: Any) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    rank = ctx.input_rank(0)
    if rank is None:
        rank = x.shape.rank
    output_shape = node.outputs[0].shape
    if rank is None and output_shape is not None:
        rank = len(output_shape)
    axis = int(ctx.attr("axis", 0))
    if rank is not None:
        axis = normalize_axis(axis, rank)
    elif axis < 0:
        raise ctx.error("Split on a negative axis needs its input's rank")
    count = len(node.outputs)
    if sizes is None:
        shape = ctx.input_shape(0)
        length = shape[axis] if shape is not None else None
        if length is None:
            # Equal parts (ONNX requires the length to divide evenly before opset 18).
            return list(tf.split(x, count, axis=axis))
        chunk = -(-length // count)
        sizes = [chunk] * (count - 1) + [length - chunk * (count - 1)]
    return list(tf.split(x, sizes, num=count, axis=axis))


def _split_sizes(ctx: ExportContext) -> Any:
    """The split sizes: a list where constant, a tensor where computed at run time."""
    if not ctx.has_input(1):
        return None
    if ctx.constant_input(1) is not None:
        return ctx.int_list(1)
    if for_tflite(ctx):
        return ctx.tf.cast(ctx.input(1), ctx.tf.int32)  # SPLIT_V's sizes; lengths fit
    return _as_int64(ctx, ctx.input(1))


@ops.register("Split", since=2)
def split_v2(node: ir.Node, ctx: ExportContext) -> Outputs:
    sizes = ctx.ints("split", [])
    return _split(ctx, node, sizes or None)


@ops.register("Split", since=13)
def split_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _split(ctx, node, _split_sizes(ctx))


@ops.register("Split", since=18)
def split_v18(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _split(ctx, node, _split_sizes(ctx))


@ops.register("Slice", since=1)
def slice_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    x = ctx.input(0)
    rank = len(x.shape)
    starts, ends = ctx.ints("starts"), ctx.ints("ends")
    axes = [normalize_axis(a, rank) for a in ctx.ints("axes", list(range(len(starts))))]
    # Steps of 1: ONNX clamps starts and ends to each axis, as Python slicing does.
    index = [slice(None)] * rank
    for axis, start, stop in zip(axes, starts, ends, strict=True):
        index[axis] = slice(start, stop)
    return [x[tuple(index)]]


@ops.register("Slice", since=10)
def slice_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    rank = len(x.shape)
    starts = _as_int64(ctx, ctx.input(1))
    ends = _as_int64(ctx, ctx.input(2))
    count = int(starts.shape[0]) if starts.shape[0] is not None else None
    if ctx.has_input(3) and ctx.constant_input(3) is None:
        return [_slice_run_time_axes(ctx, x, starts, ends)]
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
    if for_tflite(ctx) and rank > _TFLITE_SLICE_RANK:
        return [_strided_slice_merged(ctx, x, begin, end, stride, axes)]
    result = tf.strided_slice(
        x,
        tf.stack([tf.cast(b, tf.int64) for b in begin]),
        tf.stack([tf.cast(e, tf.int64) for e in end]),
        tf.stack([tf.cast(s, tf.int64) for s in stride]),
        begin_mask=begin_mask,
        end_mask=end_mask,
    )
    return [result]


#: The most dims TFLite's STRIDED_SLICE takes.
_TFLITE_SLICE_RANK = 5


def _strided_slice_merged(
    ctx: ExportContext, x: Any, begin: list[Any], end: list[Any], stride: list[Any], axes: list[int]
) -> Any:
    """A slice of more dims than TFLite's STRIDED_SLICE takes, where few enough are sliced:
    each run of axes left whole is merged into one by a Reshape (the memory order is the same),
    the merged tensor sliced, and the result reshaped to the slice's dims."""
    tf = ctx.tf
    rank = len(x.shape)
    dims = tf.shape(x, out_type=tf.int64)
    groups: list[list[int]] = []
    for axis in range(rank):
        if axis in axes or not groups or groups[-1][-1] in axes:
            groups.append([axis])
        else:
            groups[-1].append(axis)
    if len(groups) > _TFLITE_SLICE_RANK:
        raise ctx.error(
            f"a slice of {len(axes)} axes of a rank-{rank} tensor: TFLite's STRIDED_SLICE "
            f"takes at most {_TFLITE_SLICE_RANK} dims once the whole axes are merged"
        )
    merged = tf.reshape(x, tf.stack([tf.reduce_prod(tf.gather(dims, g)) for g in groups]))
    sliced = [g[0] in axes for g in groups]
    result = tf.strided_slice(
        merged,
        tf.stack(
            [
                tf.cast(begin[g[0]], tf.int64) if cut else tf.constant(0, tf.int64)
                for g, cut in zip(groups, sliced, strict=True)
            ]
        ),
        tf.stack(
            [
                tf.cast(end[g[0]], tf.int64) if cut else tf.constant(0, tf.int64)
                for g, cut in zip(groups, sliced, strict=True)
            ]
        ),
        tf.stack(
            [
                tf.cast(stride[g[0]], tf.int64) if cut else tf.constant(1, tf.int64)
                for g, cut in zip(groups, sliced, strict=True)
            ]
        ),
        begin_mask=sum(1 << i for i, cut in enumerate(sliced) if not cut),
        end_mask=sum(1 << i for i, cut in enumerate(sliced) if not cut),
    )
    kept = tf.shape(result, out_type=tf.int64)
    shape = []
    for index, group in enumerate(groups):
        shape.extend([kept[index]] if sliced[index] else [dims[axis] for axis in group])
    return tf.reshape(result, tf.stack(shape))


def _slice_run_time_axes(ctx: ExportContext, x: Any, starts: Any, ends: Any) -> Any:
    """Slice whose axes are computed at run time: dense begin/end/stride vectors, the entries
    of the sliced axes clamped as numpy does (see slice_v10) and scattered in."""
    tf = ctx.tf
    rank = len(x.shape)
    dims = tf.shape(x, out_type=tf.int64)
    axes = _as_int64(ctx, ctx.input(3))
    axes = tf.where(axes < 0, axes + rank, axes)
    steps = _as_int64(ctx, ctx.input(4)) if ctx.has_input(4) else tf.ones_like(starts)
    size = tf.gather(dims, axes)
    start = tf.where(starts < 0, starts + size, starts)
    stop = tf.where(ends < 0, ends + size, ends)
    forward = steps > 0
    start = tf.where(
        forward, tf.clip_by_value(start, 0, size), tf.clip_by_value(start, 0, size - 1)
    )
    stop = tf.where(forward, tf.clip_by_value(stop, 0, size), tf.clip_by_value(stop, -1, size - 1))
    stop = tf.where(stop < 0, -size - 1, stop)
    where = axes[:, None]
    begin = tf.tensor_scatter_nd_update(tf.zeros([rank], tf.int64), where, start)
    end = tf.tensor_scatter_nd_update(dims, where, stop)
    stride = tf.tensor_scatter_nd_update(tf.ones([rank], tf.int64), where, steps)
    return tf.strided_slice(x, begin, end, stride)


@ops.register("Gather", since=1)
def gather_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
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


@ops.register("Squeeze", since=1)
def squeeze_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    x = ctx.input(0)
    axes = [normalize_axis(a, len(x.shape)) for a in ctx.ints("axes", [])]
    if not axes:
        return [_squeeze_every_unit_dim(ctx, x)]
    return [_squeeze(ctx, x, axes)]


def _squeeze(ctx: ExportContext, x: Any, axes: list[int]) -> Any:
    """``x`` without ``axes`` (non-negative, each of size 1 by ONNX's rule).

    For TFLite where a dim is dynamic and the squeezed ones are statically 1, a reshape to the
    kept dims (static where known): the converter rewrites ExpandDims, Transpose, Squeeze chains
    (nn.MultiheadAttention's packed projection) into a tfl.squeeze that fails its squeeze_dims
    check with two dynamic dims.
    """
    tf = ctx.tf
    dims = x.shape.as_list() if x.shape.rank is not None else None
    if not for_tflite(ctx) or dims is None or None not in dims:
        return tf.squeeze(x, axis=axes)
    if any(dims[axis] != 1 for axis in axes):
        return tf.squeeze(x, axis=axes)  # which keeps ONNX's check that the axis is 1
    run_time = tf.shape(x)
    kept = [i for i in range(len(dims)) if i not in axes]
    return tf.reshape(x, tf.stack([run_time[i] if dims[i] is None else dims[i] for i in kept]))


def _squeeze_every_unit_dim(ctx: ExportContext, x: Any) -> Any:
    """Squeeze without axes: TF loses the rank where a dim is dynamic; ONNX's shape inference
    may know it (it only does where no dynamic dim could be 1)."""
    result = ctx.tf.squeeze(x)
    shape = ctx.node.outputs[0].shape
    if result.shape.rank is None and shape is not None:
        return _with_static_rank(ctx, result, len(shape))
    return result


@ops.register("Squeeze", since=13)
def squeeze_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    x = ctx.input(0)
    if not ctx.has_input(1):
        return [_squeeze_every_unit_dim(ctx, x)]
    if ctx.constant_input(1) is None:
        return [_squeeze_run_time_axes(ctx, x)]
    axes = [normalize_axis(a, len(x.shape)) for a in ctx.int_list(1)]
    return [_squeeze(ctx, x, axes)]


def _run_time_axes(ctx: ExportContext, rank: int) -> Any:
    tf = ctx.tf
    axes = tf.reshape(_as_int64(ctx, ctx.input(1)), [-1])
    return tf.where(axes < 0, axes + rank, axes)


def _axes_count(ctx: ExportContext) -> int:
    count = ctx.input(1).shape.num_elements()
    if count is None:
        raise ctx.error("axes computed at run time need a static length")
    return int(count)


def _with_static_rank(ctx: ExportContext, result: Any, rank: int) -> Any:
    """The result with the rank (and dims) ONNX's shape inference knows, which a reshape to a
    computed shape loses."""
    shape = ctx.node.outputs[0].shape
    dims = (
        [d if isinstance(d, int) else None for d in shape]
        if shape is not None and len(shape) == rank
        else [None] * rank
    )
    if for_tflite(ctx):
        # TFLite has no EnsureShape; the static shape alone is what the lowering needs.
        result.set_shape(dims)
        return result
    return ctx.tf.ensure_shape(result, dims)


def _squeeze_run_time_axes(ctx: ExportContext, x: Any) -> Any:
    tf = ctx.tf
    rank = len(x.shape)
    axes = _run_time_axes(ctx, rank)
    dropped = tf.reduce_any(tf.equal(tf.range(rank, dtype=tf.int64)[:, None], axes[None, :]), 1)
    shape = tf.boolean_mask(tf.shape(x, out_type=tf.int64), ~dropped)
    return _with_static_rank(ctx, tf.reshape(x, shape), rank - _axes_count(ctx))


@ops.register("Unsqueeze", since=1)
def unsqueeze_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    return [_unsqueeze(ctx, ctx.input(0), ctx.ints("axes"))]


@ops.register("Unsqueeze", since=13)
def unsqueeze_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    x = ctx.input(0)
    if ctx.constant_input(1) is None:
        return [_unsqueeze_run_time_axes(ctx, x)]
    return [_unsqueeze(ctx, x, ctx.int_list(1))]


def _unsqueeze(ctx: ExportContext, x: Any, axes: list[int]) -> Any:
    if x.shape.rank is None:
        # Without the rank: non-negative axes in increasing order, negative ones counted from
        # the end in decreasing order, leave every inserted axis where ONNX puts it.
        if all(a >= 0 for a in axes) or all(a < 0 for a in axes):
            for axis in sorted(axes, reverse=axes[0] < 0):
                x = ctx.tf.expand_dims(x, axis)
            return x
        raise ctx.error("Unsqueeze on axes of both signs needs its input's rank")
    rank = len(x.shape) + len(axes)
    for axis in sorted(normalize_axis(a, rank) for a in axes):
        x = ctx.tf.expand_dims(x, axis)
    return x


def _unsqueeze_run_time_axes(ctx: ExportContext, x: Any) -> Any:
    tf = ctx.tf
    rank = len(x.shape) + _axes_count(ctx)
    axes = _run_time_axes(ctx, rank)
    added = tf.reduce_any(tf.equal(tf.range(rank, dtype=tf.int64)[:, None], axes[None, :]), 1)
    # Each kept position takes the next input dim in order.
    source = tf.cumsum(tf.cast(~added, tf.int64)) - 1
    dims = tf.concat([tf.shape(x, out_type=tf.int64), [1]], axis=0)
    shape = tf.where(added, tf.ones([rank], tf.int64), tf.gather(dims, tf.maximum(source, 0)))
    return _with_static_rank(ctx, tf.reshape(x, shape), rank)


@ops.register("Expand", since=8)
def expand_v8(node: ir.Node, ctx: ExportContext) -> Outputs:
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
    if held.tensor.shape.rank is None:
        # Python slicing clamps as Shape's start and end do.
        return [shape[start:end]]
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


@ops.register("Size", since=1)
def size_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    return [ctx.tf.size(ctx.physical(0).tensor, out_type=ctx.tf.int64)]


@ops.register("Constant", since=1)
def constant_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
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


@ops.register("Pad", since=2)
def pad_v2(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    mode = ctx.attr("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pads = tf.constant(ctx.ints("pads"), tf.int64)
    value = tf.constant(float(ctx.attr("value", 0.0)), x.dtype)
    return [_pad_tensor(ctx, x, mode, pads, None, value)]


@ops.register("Pad", since=11)
def pad_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _pad(ctx, None)


@ops.register("Pad", since=18)
def pad_v18(node: ir.Node, ctx: ExportContext) -> Outputs:
    axes = ctx.int_list(3) if ctx.constant_input(3) is not None else None
    return _pad(ctx, axes)


def _pad(ctx: ExportContext, axes: list[int] | None) -> Outputs:
    tf = ctx.tf
    mode = ctx.attr("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    modes = {"constant": "CONSTANT", "reflect": "REFLECT"}
    fill = ctx.constant_input(2) if ctx.has_input(2) else None
    pads = ctx.constant_input(1)
    if (
        mode not in modes
        or pads is None
        or (ctx.has_input(2) and fill is None)
        or (ctx.has_input(3) and axes is None)
        or (pads < 0).any()
    ):
        return [_pad_general(ctx, mode)]
    held = ctx.physical(0)
    rank = len(held.tensor.shape)
    axes = [normalize_axis(a, rank) for a in (axes if axes is not None else range(rank))]
    count = len(axes)
    flat_pads = [int(p) for p in pads.reshape(-1)]
    per_axis = [[0, 0] for _ in range(rank)]
    for position, axis in enumerate(axes):
        per_axis[axis] = [flat_pads[position], flat_pads[position + count]]
    value = 0 if fill is None or fill.size == 0 else fill.reshape(-1)[0]
    # Padding is layout-agnostic: the same pads, on the axes where the held tensor has them.
    physical = per_axis if held.perm is None else [per_axis[axis] for axis in held.perm]
    result = tf.pad(held.tensor, physical, mode=modes[mode], constant_values=value)
    return [wrap(result, held.perm)]


def _pad_general(ctx: ExportContext, mode: str) -> Any:
    """Pad with pads, axes or value computed at run time, negative pads (crops), or the edge
    and wrap modes."""
    tf = ctx.tf
    x = ctx.input(0)
    axes = _as_int64(ctx, ctx.input(3)) if ctx.has_input(3) else None
    value = tf.cast(ctx.input(2), x.dtype) if ctx.has_input(2) else None
    return _pad_tensor(ctx, x, mode, _as_int64(ctx, ctx.input(1)), axes, value)


def _pad_tensor(
    ctx: ExportContext, x: Any, mode: str, pads: Any, axes: Any | None, value: Any | None
) -> Any:
    """Per-axis [before, after] as tensors; constant mode pads the positive parts and slices the
    negative ones off, the other modes gather each axis's source indices."""
    tf = ctx.tf
    rank = len(x.shape)
    pads = tf.reshape(pads, [2, -1])
    if axes is not None:
        axes = tf.reshape(axes, [-1])
        axes = tf.where(axes < 0, axes + rank, axes)
        before = tf.scatter_nd(axes[:, None], pads[0], [rank])
        after = tf.scatter_nd(axes[:, None], pads[1], [rank])
    else:
        before, after = pads[0], pads[1]
    dims = tf.shape(x, out_type=tf.int64)
    if mode == "constant":
        # No value, or an empty one, means 0.
        given = tf.zeros([0], x.dtype) if value is None else tf.reshape(value, [-1])
        value = tf.concat([given, tf.zeros([1], x.dtype)], axis=0)[0]
        grown = tf.pad(
            x,
            tf.stack([tf.maximum(before, 0), tf.maximum(after, 0)], axis=1),
            constant_values=value,
        )
        crop_front = tf.maximum(-before, 0)
        kept = tf.shape(grown, out_type=tf.int64) - crop_front - tf.maximum(-after, 0)
        return tf.slice(grown, crop_front, kept)
    if mode not in ("reflect", "edge", "wrap"):
        raise ctx.error(f"Pad mode {mode!r} is not an ONNX mode")
    result = x
    for axis in range(rank):
        # Negative pads crop first; the mode then pads the cropped axis (as onnxruntime does).
        low = tf.maximum(-before[axis], 0)
        size = dims[axis] - low - tf.maximum(-after[axis], 0)
        positions = tf.range(-tf.maximum(before[axis], 0), size + tf.maximum(after[axis], 0))
        if mode == "edge":
            source = tf.clip_by_value(positions, 0, size - 1)
        elif mode == "wrap":
            source = tf.math.floormod(positions, size)
        else:  # reflect about the first and last elements (period 2 * (size - 1))
            period = tf.maximum(2 * (size - 1), 1)
            folded = tf.math.floormod(positions, period)
            source = tf.where(folded >= size, period - folded, folded)
        result = tf.gather(result, low + source, axis=axis)
    return result


@ops.register("Tile", since=6)
def tile_v6(node: ir.Node, ctx: ExportContext) -> Outputs:
    return [ctx.tf.tile(ctx.input(0), _as_int64(ctx, ctx.input(1)))]


@ops.register("Range", since=11)
def range_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    # Scalars in ONNX; a function body's shape arithmetic may hold them as one-element tensors.
    start, limit, delta = (tf.reshape(ctx.input(i), []) for i in range(3))
    return [tf.range(start, limit, delta, dtype=start.dtype)]
