"""Indexing, scattering and ordering: GatherElements, GatherND, Scatter*, TensorScatter, TopK,
Unique, NonZero, Compress, OneHot, Hardmax, EyeLike, Trilu, CumSum/CumProd, ReverseSequence,
DepthToSpace/SpaceToDepth.

Every converter reads its inputs in ONNX's layout (``ctx.input``): indices are logical. Negative
indices are wrapped against the indexed dim, as ONNX allows them and TF does not.
"""

from __future__ import annotations

from typing import Any

from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    for_tflite,
    ir,
    normalize_axis,
    ops,
)


def _int64(ctx: ExportContext, tensor: Any) -> Any:
    return ctx.tf.cast(tensor, ctx.tf.int64)


def _wrap_negative(ctx: ExportContext, indices: Any, size: Any) -> Any:
    tf = ctx.tf
    indices = _int64(ctx, indices)
    return tf.where(indices < 0, indices + tf.cast(size, tf.int64), indices)


def _rank(ctx: ExportContext, index: int) -> int:
    rank = ctx.input_rank(index)
    if rank is None:
        rank = ctx.input(index).shape.rank
    if rank is None:
        raise ctx.error(f"input {index} needs a known rank")
    return int(rank)


def _element_coordinates(ctx: ExportContext, indices: Any, axis: int, size: Any) -> Any:
    """Full coordinates (shape indices.shape + [rank]) of the elements GatherElements and
    ScatterElements address: the position in ``indices`` with ``axis`` replaced by its value."""
    tf = ctx.tf
    shape = tf.shape(indices, out_type=tf.int64)
    rank = _rank(ctx, 1)
    grids = tf.meshgrid(*[tf.range(shape[d]) for d in range(rank)], indexing="ij")
    grids[axis] = _wrap_negative(ctx, indices, size)
    return tf.stack(grids, axis=-1)


@ops.register("GatherElements", since=11)
def gather_elements_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    axis = normalize_axis(int(ctx.attr("axis", 0)), _rank(ctx, 0))
    size = tf.shape(x, out_type=tf.int64)[axis]
    return [tf.gather_nd(x, _element_coordinates(ctx, ctx.input(1), axis, size))]


def _scatter_elements(ctx: ExportContext, reduction: str) -> Outputs:
    tf = ctx.tf
    data = ctx.input(0)
    updates = ctx.input(2)
    axis = normalize_axis(int(ctx.attr("axis", 0)), _rank(ctx, 0))
    size = tf.shape(data, out_type=tf.int64)[axis]
    coordinates = _element_coordinates(ctx, ctx.input(1), axis, size)
    if reduction == "mul":
        # TF has no multiplying scatter: the product of every update per element (1 where none).
        linear = tf.reshape(_linear_index(ctx, coordinates, data), [-1])
        products = tf.math.unsorted_segment_prod(
            tf.reshape(updates, [-1]), linear, tf.size(data, out_type=tf.int64)
        )
        return [data * tf.reshape(products, tf.shape(data))]
    return [_scatter_nd(ctx, data, coordinates, updates, reduction)]


def _linear_index(ctx: ExportContext, coordinates: Any, data: Any) -> Any:
    tf = ctx.tf
    dims = tf.shape(data, out_type=tf.int64)
    strides = tf.math.cumprod(dims, exclusive=True, reverse=True)
    return tf.reduce_sum(coordinates * strides, axis=-1)


def _scatter_nd(ctx: ExportContext, data: Any, indices: Any, updates: Any, reduction: str) -> Any:
    tf = ctx.tf
    functions = {
        "none": tf.tensor_scatter_nd_update,
        "add": tf.tensor_scatter_nd_add,
        "max": tf.tensor_scatter_nd_max,
        "min": tf.tensor_scatter_nd_min,
    }
    # TFLite's builtins have no scatter with max or min: those run as mul does.
    in_turn = {"mul": tf.multiply}
    if for_tflite(ctx):
        in_turn |= {"max": tf.maximum, "min": tf.minimum}
    if reduction in functions and reduction not in in_turn:
        return functions[reduction](data, indices, updates)
    if reduction not in in_turn:
        raise ctx.error(f"reduction {reduction!r} is not an ONNX reduction")
    combine = in_turn[reduction]
    # One update at a time: duplicate indices combine in turn, as the reference does.
    depth = tf.shape(indices)[-1]
    flat_indices = tf.reshape(indices, tf.stack([-1, depth]))
    count = tf.shape(flat_indices)[0]
    flat_updates = tf.reshape(
        updates, tf.concat([[count], tf.shape(updates)[tf.rank(indices) - 1 :]], axis=0)
    )

    def step(i: Any, result: Any) -> tuple[Any, Any]:
        where = flat_indices[i : i + 1]
        combined = combine(tf.gather_nd(result, where), flat_updates[i : i + 1])
        return i + 1, tf.tensor_scatter_nd_update(result, where, combined)

    _, result = tf.while_loop(lambda i, _: i < count, step, (tf.constant(0), data))
    return result


def _reduction(ctx: ExportContext) -> str:
    found = ctx.attr("reduction", "none")
    return found.decode() if isinstance(found, bytes) else str(found)


@ops.register("Scatter", since=9)
def scatter_v9(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _scatter_elements(ctx, "none")


@ops.register("ScatterElements", since=11)
def scatter_elements_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _scatter_elements(ctx, "none")


@ops.register("ScatterElements", since=16)
def scatter_elements_v16(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _scatter_elements(ctx, _reduction(ctx))


def _nd_indices(ctx: ExportContext, data: Any, indices: Any, batch_dims: int) -> Any:
    """ScatterND/GatherND indices with negative entries wrapped against the dims they index."""
    tf = ctx.tf
    indices = _int64(ctx, indices)
    depth = indices.shape[-1]
    if depth is None:
        raise ctx.error("the last dim of the indices must be known")
    dims = tf.shape(data, out_type=tf.int64)[batch_dims : batch_dims + int(depth)]
    return tf.where(indices < 0, indices + dims, indices)


def _scatter_nd_op(ctx: ExportContext, reduction: str) -> Outputs:
    data = ctx.input(0)
    indices = _nd_indices(ctx, data, ctx.input(1), 0)
    return [_scatter_nd(ctx, data, indices, ctx.input(2), reduction)]


@ops.register("ScatterND", since=11)
def scatter_nd_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _scatter_nd_op(ctx, "none")


@ops.register("ScatterND", since=16)
def scatter_nd_v16(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _scatter_nd_op(ctx, _reduction(ctx))


@ops.register("GatherND", since=11)
def gather_nd_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    data = ctx.input(0)
    return [ctx.tf.gather_nd(data, _nd_indices(ctx, data, ctx.input(1), 0))]


@ops.register("GatherND", since=12)
def gather_nd_v12(node: ir.Node, ctx: ExportContext) -> Outputs:
    data = ctx.input(0)
    batch_dims = int(ctx.attr("batch_dims", 0))
    indices = _nd_indices(ctx, data, ctx.input(1), batch_dims)
    return [ctx.tf.gather_nd(data, indices, batch_dims=batch_dims)]


@ops.register("TensorScatter", since=24)
def tensor_scatter_v24(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    cache = ctx.input(0)
    update = ctx.input(1)
    rank = _rank(ctx, 0)
    axis = normalize_axis(int(ctx.attr("axis", -2)), rank)
    mode = ctx.attr("mode", "linear")
    circular = (mode.decode() if isinstance(mode, bytes) else mode) == "circular"
    shape = tf.shape(update, out_type=tf.int64)
    batch = shape[0]
    if ctx.has_input(2):
        starts = _int64(ctx, ctx.input(2))
    else:
        starts = tf.zeros(tf.reshape(batch, [1]), tf.int64)
    grids = tf.meshgrid(*[tf.range(shape[d]) for d in range(rank)], indexing="ij")
    position = tf.gather(starts, grids[0]) + grids[axis]
    if circular:
        position = tf.math.floormod(position, tf.shape(cache, out_type=tf.int64)[axis])
    grids[axis] = position
    return [tf.tensor_scatter_nd_update(cache, tf.stack(grids, axis=-1), update)]


def _order_key(ctx: ExportContext, x: Any, largest: bool) -> Any:
    """A tensor whose descending order is the wanted order of ``x`` (TopK sorts descending)."""
    tf = ctx.tf
    if x.dtype == tf.uint64:
        # Flipping the top bit maps unsigned order onto signed order, bit for bit.
        x = tf.bitwise.bitwise_xor(tf.bitcast(x, tf.int64), tf.constant(-(2**63), tf.int64))
    elif x.dtype.is_integer and x.dtype.is_unsigned:
        x = tf.cast(x, tf.int64)
    if largest:
        return x
    # ~x reverses integer order without overflow; negation reverses float order.
    return tf.bitwise.invert(x) if x.dtype.is_integer else -x


@ops.register("TopK", since=1)
def top_k_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _top_k(ctx, ctx.tf.constant(int(ctx.attr("k")), ctx.tf.int32), largest=True)


@ops.register("TopK", since=10)
def top_k_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _top_k(ctx, _k_input(ctx), largest=True)


@ops.register("TopK", since=11)
def top_k_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _top_k(ctx, _k_input(ctx), largest=bool(ctx.attr("largest", 1)))


def _k_input(ctx: ExportContext) -> Any:
    return ctx.tf.cast(ctx.tf.reshape(ctx.input(1), []), ctx.tf.int32)


def _top_k(ctx: ExportContext, k: Any, largest: bool) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    rank = _rank(ctx, 0)
    axis = normalize_axis(int(ctx.attr("axis", -1)), rank)
    perm = [d for d in range(rank) if d != axis] + [axis]
    moved = x if axis == rank - 1 else tf.transpose(x, perm)
    # top_k keeps the lower index first among equal keys, as ONNX wants.
    _, indices = tf.math.top_k(_order_key(ctx, moved, largest), k=k, sorted=True)
    values = tf.gather(moved, indices, batch_dims=rank - 1)
    indices = tf.cast(indices, tf.int64)
    if axis != rank - 1:
        back = [perm.index(d) for d in range(rank)]
        values, indices = tf.transpose(values, back), tf.transpose(indices, back)
    return [values, indices]


@ops.register("NonZero", since=9)
def non_zero_v9(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    found = tf.where(tf.not_equal(x, tf.zeros((), x.dtype)))
    return [tf.transpose(found)]


@ops.register("Compress", since=9)
def compress_v9(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    axis_attr = ctx.attr("axis", None)
    if axis_attr is None:
        x = tf.reshape(x, [-1])
        axis = 0
    else:
        axis = normalize_axis(int(axis_attr), _rank(ctx, 0))
    condition = tf.reshape(tf.cast(ctx.input(1), tf.bool), [-1])
    size = tf.shape(x, out_type=tf.int64)[axis]
    selected = tf.where(condition)[:, 0]
    # A condition longer than the axis selects nothing past its end.
    selected = tf.boolean_mask(selected, selected < size)
    return [tf.gather(x, selected, axis=axis)]


@ops.register("OneHot", since=9)
def one_hot_v9(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    indices = _int64(ctx, ctx.input(0))
    depth = tf.cast(tf.reshape(ctx.input(1), []), tf.int64)
    values = ctx.input(2)
    rank = _rank(ctx, 0) + 1
    axis = normalize_axis(int(ctx.attr("axis", -1)), rank)
    indices = tf.where(indices < 0, indices + depth, indices)
    # Out-of-range indices give a row of off values in both.
    return [
        tf.one_hot(
            indices, tf.cast(depth, tf.int32), values[1], values[0], axis=axis, dtype=values.dtype
        )
    ]


@ops.register("Hardmax", since=1)
def hardmax_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    axis = normalize_axis(int(ctx.attr("axis", 1)), _rank(ctx, 0))
    # Before opset 13 the input is read as a matrix: dims before axis by dims from it.
    shape = tf.shape(x, out_type=tf.int64)
    rows = tf.reshape(x, tf.stack([tf.reduce_prod(shape[:axis]), tf.reduce_prod(shape[axis:])]))
    first = tf.math.argmax(rows, axis=1)
    hard = tf.one_hot(first, tf.cast(tf.shape(rows)[1], tf.int32), dtype=x.dtype)
    return [tf.reshape(hard, shape)]


@ops.register("Hardmax", since=13)
def hardmax_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    axis = normalize_axis(int(ctx.attr("axis", -1)), _rank(ctx, 0))
    first = tf.math.argmax(x, axis=axis)  # the first of equal maxima, as ONNX
    depth = tf.shape(x)[axis]
    return [tf.one_hot(first, depth, axis=axis, dtype=x.dtype)]


@ops.register("EyeLike", since=9)
def eye_like_v9(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    k = int(ctx.attr("k", 0))
    shape = tf.shape(x, out_type=tf.int64)
    rows = tf.range(shape[0])[:, None]
    columns = tf.range(shape[1])[None, :]
    return [tf.cast(tf.equal(columns - rows, k), ctx.output_dtype(0))]


@ops.register("Trilu", since=14)
def trilu_v14(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    k = tf.reshape(_int64(ctx, ctx.input(1)), []) if ctx.has_input(1) else tf.constant(0, tf.int64)
    shape = tf.shape(x, out_type=tf.int64)
    rows = tf.range(shape[-2])[:, None]
    columns = tf.range(shape[-1])[None, :]
    upper = bool(ctx.attr("upper", 1))
    keep = (columns - rows >= k) if upper else (columns - rows <= k)
    return [tf.where(keep, x, tf.zeros((), x.dtype))]


def _cumulative(ctx: ExportContext, fn: Any) -> Outputs:
    tf = ctx.tf
    constant = ctx.constant_input(1)
    # A constant int32 axis where known: TFLite's CUMSUM takes nothing else.
    axis = (
        int(constant.reshape(()))
        if constant is not None
        else tf.cast(tf.reshape(ctx.input(1), []), tf.int32)
    )
    return [
        fn(
            ctx.input(0),
            axis=axis,
            exclusive=bool(ctx.attr("exclusive", 0)),
            reverse=bool(ctx.attr("reverse", 0)),
        )
    ]


@ops.register("CumSum", since=11)
def cum_sum_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _cumulative(ctx, ctx.tf.math.cumsum)


@ops.register("CumProd", since=26)
def cum_prod_v26(node: ir.Node, ctx: ExportContext) -> Outputs:
    if for_tflite(ctx):
        return [_tflite_cumprod(ctx)]
    return _cumulative(ctx, ctx.tf.math.cumprod)


def _tflite_cumprod(ctx: ExportContext) -> Any:
    """CumProd from TFLite builtins (which have no CUMPROD): the slices along the axis
    multiplied in turn, in numpy's order, so float products round as the reference's; an axis
    given at run time picks among the products along every axis. Each axis needs a static
    length."""
    tf = ctx.tf
    x = ctx.input(0)
    shape = x.shape.as_list() if x.shape.rank is not None else None
    if shape is None:
        raise ctx.error("CumProd for TFLite needs its input's rank")
    rank = len(shape)
    exclusive = bool(ctx.attr("exclusive", 0))
    reverse = bool(ctx.attr("reverse", 0))
    known = ctx.constant_input(1)
    axes = [normalize_axis(int(known.reshape(())), rank)] if known is not None else range(rank)

    def along(axis: int) -> Any:
        if shape[axis] is None:
            raise ctx.error(f"CumProd for TFLite needs a static length along axis {axis}")
        slices = tf.unstack(x, axis=axis)
        if reverse:
            slices = slices[::-1]
        products, running = [], None
        for piece in slices:
            if exclusive:
                products.append(tf.ones_like(piece) if running is None else running)
            running = piece if running is None else running * piece
            if not exclusive:
                products.append(running)
        if reverse:
            products = products[::-1]
        return tf.stack(products, axis=axis) if products else x

    if known is not None:
        return along(axes[0])
    picked = tf.reshape(tf.cast(ctx.input(1), tf.int32), [])
    picked = tf.where(picked < 0, picked + rank, picked)
    result = along(rank - 1)
    for axis in range(rank - 2, -1, -1):
        result = tf.where(tf.equal(picked, axis), along(axis), result)
    return result


@ops.register("ReverseSequence", since=10)
def reverse_sequence_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    return [
        ctx.tf.reverse_sequence(
            ctx.input(0),
            _int64(ctx, ctx.input(1)),
            seq_axis=int(ctx.attr("time_axis", 0)),
            batch_axis=int(ctx.attr("batch_axis", 1)),
        )
    ]


def _mode(ctx: ExportContext) -> str:
    found = ctx.attr("mode", "DCR")
    return found.decode() if isinstance(found, bytes) else str(found)


@ops.register("DepthToSpace", since=1)
def depth_to_space_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    block = int(ctx.attr("blocksize"))
    b, c, h, w = tf.unstack(tf.shape(x, out_type=tf.int64))
    depth = c // (block * block)
    if _mode(ctx) == "CRD":
        blocks = tf.reshape(x, tf.stack([b, depth, block, block, h, w]))
        moved = tf.transpose(blocks, [0, 1, 4, 2, 5, 3])
    else:
        blocks = tf.reshape(x, tf.stack([b, block, block, depth, h, w]))
        moved = tf.transpose(blocks, [0, 3, 4, 1, 5, 2])
    return [tf.reshape(moved, tf.stack([b, depth, h * block, w * block]))]


@ops.register("SpaceToDepth", since=1)
def space_to_depth_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    block = int(ctx.attr("blocksize"))
    b, c, h, w = tf.unstack(tf.shape(x, out_type=tf.int64))
    blocks = tf.reshape(x, tf.stack([b, c, h // block, block, w // block, block]))
    order = [0, 1, 3, 5, 2, 4] if _mode(ctx) == "CRD" else [0, 3, 5, 1, 2, 4]
    moved = tf.transpose(blocks, order)
    return [tf.reshape(moved, tf.stack([b, c * block * block, h // block, w // block]))]


def _lexicographic_order(ctx: ExportContext, rows: Any, width: int) -> Any:
    """The stable order that sorts the rows of a 2-D tensor lexicographically (a radix sort:
    one stable argsort per column, last column first)."""
    tf = ctx.tf
    order = tf.range(tf.shape(rows)[0])
    for column in reversed(range(width)):
        keys = tf.gather(rows[:, column], order)
        order = tf.gather(order, tf.argsort(keys, stable=True))
    return order


@ops.register("Unique", since=11)
def unique_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    axis_attr = ctx.attr("axis", None)
    if axis_attr is None:
        rows = tf.reshape(x, [-1, 1])
        axis = 0
    else:
        rank = _rank(ctx, 0)
        axis = normalize_axis(int(axis_attr), rank)
        moved = tf.transpose(x, [axis] + [d for d in range(rank) if d != axis])
        rows = tf.reshape(moved, tf.stack([tf.shape(x)[axis], -1]))
    width = rows.shape[1]
    if width is None:
        raise ctx.error("Unique along an axis needs the other dims known")
    keys = rows if rows.dtype.is_floating or rows.dtype.is_integer else tf.cast(rows, tf.int64)
    # Rows in first-occurrence order, as tf.unique finds them (UniqueV2 takes a row per slice).
    # int32 indices throughout: TFLite's segment and scatter builtins take no others.
    if axis_attr is None:  # TFLite's UNIQUE is this 1-D form
        found, inverse = tf.unique(tf.reshape(keys, [-1]), out_idx=tf.int32)
        found = found[:, None]
    else:
        found, inverse = tf.raw_ops.UniqueV2(
            x=keys, axis=tf.constant([0], tf.int64), out_idx=tf.int32
        )
    count = tf.shape(found)[0]
    positions = tf.range(tf.shape(rows)[0])
    first = tf.math.unsorted_segment_min(positions, inverse, count)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(inverse), inverse, count)
    if bool(ctx.attr("sorted", 1)):
        order = _lexicographic_order(ctx, found, int(width))
        # The inverse permutation of the order, by scattering (InvertPermutation is no builtin).
        rank_of = tf.scatter_nd(order[:, None], tf.range(count), count[None])
        first, counts = tf.gather(first, order), tf.gather(counts, order)
        inverse = tf.gather(rank_of, inverse)
    unique_rows = tf.gather(rows, first)
    first, inverse, counts = (tf.cast(t, tf.int64) for t in (first, inverse, counts))
    if axis_attr is None:
        values = tf.reshape(unique_rows, [-1])
    else:
        shape = tf.concat([[count], tf.shape(moved, out_type=tf.int64)[1:]], axis=0)
        back = [d for d in range(rank) if d != axis]
        restored = tf.reshape(unique_rows, shape)
        perm = [0] * rank
        for position, d in enumerate([axis, *back]):
            perm[d] = position
        values = tf.transpose(restored, perm)
    return [values, first, inverse, counts]


@ops.register("ArrayFeatureExtractor", since=1, domain="ai.onnx.ml")
def array_feature_extractor_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    indices = tf.reshape(_int64(ctx, ctx.input(1)), [-1])
    # The indices select along the last axis; a 1-D input gives a [1, k] result.
    found = tf.gather(x, indices, axis=-1)
    return [found[None, :] if _rank(ctx, 0) == 1 else found]
