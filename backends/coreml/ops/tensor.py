"""Shape and layout: Reshape, Flatten, Transpose, Concat, Split, Slice, Gather, Squeeze,
Unsqueeze, Expand, Shape, Pad, Tile, ConstantOfShape, Constant, Range."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import normalized_axes, scalar_like
from unframe.backends.coreml.ops.padding import MODES, pad_by_gathers
from unframe.backends.coreml.registry import ops

_INT32_MAX = int(np.iinfo(np.int32).max)


def _shape_var(ctx: ExportContext, index: int) -> Any:
    """Input ``index`` (a shape-like int tensor) as a constant list where known, else its Var."""
    known = ctx.ints(index)
    return known if known is not None else ctx.input(index)


@ops.register("Reshape", since=5)
def reshape_v5(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    shape = ctx.ints(1)
    allow_zero = bool(ctx.attr("allowzero", 0))
    declared = _declared_shape(ctx)
    if shape is None and declared is not None and 0 in declared:
        return [_empty_result(ctx, declared)]
    if shape is None:
        # A shape computed at run time: MIL reshapes by it as ONNX does, except that a 0 copies
        # a dim only where the target has the input's rank.
        return [ctx.mb.reshape(x=ctx.input(0), shape=ctx.input(1))]
    if 0 in shape and not allow_zero:
        dims = ctx.input_shape(0) or ()
        copied = [dims[i] if v == 0 and i < len(dims) else v for i, v in enumerate(shape)]
        if any(v is None for v in copied):
            if len(shape) != len(dims):
                raise ctx.error("a 0 (copy) in the shape of a dim unknown before run time")
        else:
            shape = [int(v) for v in copied]  # type: ignore[arg-type]
    elif 0 in shape:
        if -1 in shape:
            raise ctx.error("allowzero=1 with both 0 and -1 in the shape")
    if len(shape) > 5:
        raise ctx.error(f"a rank-{len(shape)} result: Core ML holds tensors up to rank 5")
    return [ctx.mb.reshape(x=ctx.input(0), shape=shape)]


@ops.register("Flatten", since=1)
def flatten_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    dims = ctx.input_shape(0)
    if dims is None:
        raise ctx.error("an input of unknown rank")
    axis = int(ctx.attr("axis"))
    axis = axis + len(dims) if axis < 0 else axis
    outer, inner = dims[:axis], dims[axis:]
    if all(isinstance(d, int) for d in outer):
        shape = [math.prod(d for d in outer if d is not None), -1]
    elif all(isinstance(d, int) for d in inner):
        shape = [-1, math.prod(d for d in inner if d is not None)]
    else:
        mb = ctx.mb
        sizes = mb.shape(x=ctx.input(0))
        lead = mb.reduce_prod(
            x=mb.slice_by_index(x=sizes, begin=[0], end=[axis]), axes=[0], keep_dims=True
        )
        return [
            mb.reshape(
                x=ctx.input(0), shape=mb.concat(values=[lead, np.array([-1], np.int32)], axis=0)
            )
        ]
    return [ctx.mb.reshape(x=ctx.input(0), shape=shape)]


@ops.register("Transpose", since=1)
def transpose_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    perm = ctx.attr("perm", None)
    if perm is None:
        perm = list(reversed(range(ctx.input_rank(0))))
    return [ctx.mb.transpose(x=ctx.input(0), perm=[int(p) for p in perm])]


@ops.register("Concat", since=4)
def concat_v4(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    values = [ctx.input(i) for i in range(len(node.inputs)) if ctx.has_input(i)]
    return [ctx.mb.concat(values=values, axis=int(ctx.attr("axis")))]


def _split(ctx: ExportContext, sizes: list[int] | None) -> list[Any]:
    axis = int(ctx.attr("axis", 0))
    count = len(ctx.node.outputs)
    if sizes is None:
        dims = ctx.input_shape(0)
        length = dims[axis] if dims is not None and -len(dims) <= axis < len(dims) else None
        if length is None:
            raise ctx.error("a split of an axis whose length is unknown before run time")
        chunk = -(-length // count)
        sizes = [min(chunk, length - i * chunk) for i in range(count)]
    if len(sizes) == 1:
        return [ctx.mb.identity(x=ctx.input(0))]
    return list(ctx.mb.split(x=ctx.input(0), split_sizes=sizes, axis=axis))


@ops.register("Split", since=2)
def split_v2(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _split(ctx, ctx.attr("split", None))


@ops.register("Split", since=13)
def split_v13(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    if ctx.has_input(1) and ctx.ints(1) is None:
        # Sizes computed at run time, but the outputs' declared lengths along the axis are them.
        shapes = [_declared_shape(ctx, i) for i in range(len(node.outputs))]
        if any(shape is None for shape in shapes):
            raise ctx.error("split sizes computed at run time, and the outputs' shapes unknown")
        axis = normalized_axes([int(ctx.attr("axis", 0))], ctx.input_rank(0))[0]
        return _split(ctx, [shape[axis] for shape in shapes if shape is not None])
    return _split(ctx, ctx.ints(1) if ctx.has_input(1) else None)


@ops.register("Split", since=18)
def split_v18(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return split_v13(node, ctx)


@ops.register("Slice", since=10)
def slice_v10(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    dims = ctx.input_shape(0)
    if dims is None:
        raise ctx.error("an input of unknown rank")
    rank = len(dims)
    starts, ends = ctx.ints(1), ctx.ints(2)
    axes = ctx.ints(3) if ctx.has_input(3) else list(range(len(starts or [])))
    steps = ctx.ints(4) if ctx.has_input(4) else [1] * len(starts or [])
    if starts is None or ends is None or axes is None or steps is None:
        return _slice_at_run_time(ctx)
    begin, end, stride = [0] * rank, [0] * rank, [1] * rank
    begin_mask, end_mask = [True] * rank, [True] * rank
    for start, stop, axis, step in zip(
        starts, ends, normalized_axes(axes, rank), steps, strict=True
    ):
        length = dims[axis]
        stride[axis] = step
        if length is not None:
            first, last, _ = slice(start, stop, step).indices(length)
            begin[axis], begin_mask[axis] = first, False
            # A negative step that runs past index 0 has no end index in MIL's terms: a mask.
            if step < 0 and last < 0:
                continue
            end[axis], end_mask[axis] = last, False
            continue
        big = abs(start) >= _INT32_MAX if step > 0 else start >= _INT32_MAX
        if not big:
            begin[axis], begin_mask[axis] = start, False
        past = stop >= _INT32_MAX if step > 0 else stop <= -_INT32_MAX
        if not past:
            if stop < 0 and step < 0 or start < 0 != (stop < 0):
                raise ctx.error(
                    "negative bounds on an axis whose length is unknown before run time"
                )
            end[axis], end_mask[axis] = stop, False
    return [
        ctx.mb.slice_by_index(
            x=ctx.input(0),
            begin=begin,
            end=end,
            stride=stride,
            begin_mask=begin_mask,
            end_mask=end_mask,
        )
    ]


def _int_vector(ctx: ExportContext, index: int, default: np.ndarray) -> Any:
    """Input ``index`` as an int32 vector: a constant where known (``default`` where absent)."""
    if not ctx.has_input(index):
        return ctx.make_constant(default.astype(np.int32))
    known = ctx.ints(index)
    if known is not None:
        return ctx.make_constant(np.asarray(known, np.int32))
    var = ctx.input(index)
    return (
        var
        if ctx.mil_dtype(ctx.input_dtype(index)) == "int32"
        else ctx.mb.cast(x=var, dtype="int32")
    )


def _empty_result(ctx: ExportContext, wanted: list[int]) -> Any:
    """An output declared empty: a constant, since nothing of the input reaches it."""
    word = ctx.mil_dtype(ctx.input_dtype(0))
    numpy_type = {"fp32": np.float32, "fp16": np.float16, "int32": np.int32}.get(word, np.bool_)
    return ctx.make_constant(np.zeros(wanted, numpy_type))


def _slice_at_run_time(ctx: ExportContext) -> list[Any]:
    """Slice by starts, axes or steps known only at run time. MIL's strides are constants, so
    each axis is gathered at ``start + step * i`` for the ``i`` its declared output length
    counts (the ends then say nothing more), or where the output's shape is not declared, for
    the ``i`` below the count of positions the clamped bounds hold, counted at run time (an
    axis whose length is known only at run time reads it from the input's shape)."""
    dims = ctx.input_shape(0)
    wanted = _declared_shape(ctx)
    count = (ctx.input_shape(1) or (None,))[0]
    if dims is None or count is None:
        raise ctx.error(
            "starts, ends, axes or steps computed at run time, and the input's rank or their "
            "count unknown before it"
        )
    if wanted is not None and 0 in wanted:
        return [_empty_result(ctx, wanted)]  # whatever the bounds
    mb = ctx.mb
    rank = len(dims)
    known_axes = ctx.ints(3) if ctx.has_input(3) else list(range(count))
    axes: Any = None
    if known_axes is None:
        axes = ctx.input(3)
        if ctx.mil_dtype(ctx.input_dtype(3)) != "int32":
            axes = mb.cast(x=axes, dtype="int32")
        axes = mb.select(
            cond=mb.less(x=axes, y=np.int32(0)), a=mb.add(x=axes, y=np.int32(rank)), b=axes
        )
    starts, steps = _int_vector(ctx, 1, np.zeros(0)), _int_vector(ctx, 4, np.ones(count))
    ends = _int_vector(ctx, 2, np.zeros(0))
    x = ctx.input(0)
    sizes: Any = None
    for axis, dim in enumerate(dims):
        if known_axes is not None and axis not in normalized_axes(known_axes, rank):
            continue
        length: Any = np.int32(dim) if dim is not None else None
        if length is None:
            sizes = sizes if sizes is not None else mb.shape(x=ctx.input(0))
            length = mb.gather(x=sizes, indices=np.int32(axis), axis=0)
        last = np.int32(dim - 1) if dim is not None else mb.sub(x=length, y=np.int32(1))
        # This axis's start and step: those whose axis it is (masked sums), else 0 and 1.
        hit = (
            mb.cast(x=mb.equal(x=axes, y=np.int32(axis)), dtype="int32")
            if known_axes is None
            else np.asarray([a == axis for a in normalized_axes(known_axes, rank)], np.int32)
        )
        start = _masked_sum(ctx, hit, starts)
        known_steps = ctx.ints(4) if ctx.has_input(4) else [1] * count
        step: Any
        missing: Any = 0
        if known_axes is not None and known_steps is not None:
            # Known before run time: plain ints (MIL folds constant selects into values its
            # own reader then refuses).
            step = sum(int(h) * s for h, s in zip(hit, known_steps, strict=True)) or 1
            upper: Any = length if step > 0 else last
        else:
            missing = mb.sub(x=np.int32(1), y=mb.reduce_sum(x=hit, axes=[0], keep_dims=False))
            step = mb.add(
                x=mb.reduce_sum(x=mb.mul(x=hit, y=steps), axes=[0], keep_dims=False), y=missing
            )
            upper = mb.select(cond=mb.greater(x=step, y=np.int32(0)), a=length, b=last)
        # ONNX clamps a start into [0, length] stepping forward and [0, length - 1] backward.
        if isinstance(start, np.integer):
            start = mb.add(x=start, y=length) if start < 0 else start
        else:
            start = mb.select(
                cond=mb.less(x=start, y=np.int32(0)), a=mb.add(x=start, y=length), b=start
            )
        start = mb.maximum(x=mb.minimum(x=start, y=upper), y=np.int32(0))
        if wanted is not None:
            counting: Any = np.arange(wanted[axis], dtype=np.int32)
            offsets = counting * step if isinstance(step, int) else mb.mul(x=step, y=counting)
        else:
            held = _positions_held(ctx, (hit, ends, missing), start, step, (length, last))
            counting = mb.range_1d(start=np.int32(0), end=held, step=np.int32(1))
            offsets = mb.mul(x=np.int32(step) if isinstance(step, int) else step, y=counting)
        positions = mb.add(x=start, y=offsets)
        x = mb.gather(x=x, indices=positions, axis=axis)
    return [x if x is not ctx.input(0) else mb.identity(x=x)]


def _masked_sum(ctx: ExportContext, hit: Any, values: Any) -> Any:
    """The sum of ``values`` where ``hit`` is 1: a plain int32 where both are known when built
    (coremltools' own reader fails on a ``reduce_sum`` of constants: "'numpy.bool' object cannot
    be interpreted as an integer"), else MIL ops."""
    known = getattr(values, "val", None)
    if isinstance(hit, np.ndarray) and known is not None:
        return np.int32(np.sum(hit.astype(np.int64) * np.asarray(known, np.int64)))
    return ctx.mb.reduce_sum(x=ctx.mb.mul(x=hit, y=values), axes=[0], keep_dims=False)


def _positions_held(
    ctx: ExportContext,
    ends_of: tuple[Any, Any, Any],
    start: Any,
    step: Any,
    bounds: tuple[Any, Any],
) -> Any:
    """How many positions ``start, start + step, ...`` a slice of an axis takes before its end
    (the masked sum of ``ends`` by ``hit``, or the axis's length where ``missing``; clamped as
    ONNX does: into [0, length] stepping forward, [-1, length - 1] backward), at run time."""
    mb = ctx.mb
    hit, ends, missing = ends_of
    length, last = bounds
    end = _masked_sum(ctx, hit, ends)
    if isinstance(end, np.integer):
        end = mb.add(x=end, y=length) if end < 0 else end
    else:
        end = mb.select(cond=mb.less(x=end, y=np.int32(0)), a=mb.add(x=end, y=length), b=end)
    if not isinstance(missing, int):
        end = mb.add(x=end, y=mb.mul(x=missing, y=length))
    if isinstance(step, int):
        low, high = (np.int32(0), length) if step > 0 else (np.int32(-1), last)
        step = np.int32(step)
    else:
        forward = mb.greater(x=step, y=np.int32(0))
        low = mb.select(cond=forward, a=np.int32(0), b=np.int32(-1))
        high = mb.select(cond=forward, a=length, b=last)
    end = mb.maximum(x=mb.minimum(x=end, y=high), y=low)
    # ceil((end - start) / step), as a floor division of the negated distance
    behind = mb.sub(x=start, y=end)
    held = mb.sub(x=np.int32(0), y=mb.floor_div(x=behind, y=step))
    return mb.maximum(x=held, y=np.int32(0))


@ops.register("Gather", since=1)
def gather_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    dims = ctx.input_shape(0)
    axis = int(ctx.attr("axis", 0))
    indices = ctx.constant_input(1)
    if indices is not None and dims is not None:
        length = dims[axis]
        if indices.size and indices.min() < 0:
            if length is None:
                raise ctx.error(
                    "negative indices into an axis whose length is unknown before run time"
                )
            indices = np.where(indices < 0, indices + length, indices)
        index_var = ctx.make_constant(indices.astype(np.int32), "indices")
    else:
        index_var = ctx.input(1)
        mb = ctx.mb
        length_var = mb.gather(
            x=mb.shape(x=ctx.input(0)), indices=[axis if axis >= 0 else len(dims or ()) + axis]
        )
        index_var = mb.select(
            cond=mb.less(x=index_var, y=np.int32(0)),
            a=mb.add(x=index_var, y=length_var),
            b=index_var,
        )
    return [ctx.mb.gather(x=ctx.input(0), indices=index_var, axis=axis)]


def _axes(ctx: ExportContext) -> list[int] | None:
    """Axes from input 1 (opset 13 on) or the ``axes`` attribute (before)."""
    if ctx.has_input(1):
        axes = ctx.ints(1)
        if axes is None:
            raise ctx.error("axes computed at run time")
        return axes
    return ctx.attr("axes", None)


def _declared_shape(ctx: ExportContext, output: int = 0) -> list[int] | None:
    """Output ``output``'s shape where the model declares every dim of it."""
    shape = ctx.node.outputs[output].shape
    dims = [d for d in shape if isinstance(d, int)] if shape is not None else []
    return dims if shape is not None and len(dims) == len(shape) else None


def _reshape_to_declared(ctx: ExportContext) -> list[Any]:
    """Squeeze/Unsqueeze by axes computed at run time: only the output's declared shape can say
    where the unit dims go (MIL takes constant axes)."""
    shape = _declared_shape(ctx)
    if not ctx.has_input(1) or ctx.ints(1) is not None or shape is None:
        raise ctx.error("axes computed at run time, and the output's shape unknown")
    if len(shape) > 5:
        raise ctx.error(f"a rank-{len(shape)} result: Core ML holds tensors up to rank 5")
    return [ctx.mb.reshape(x=ctx.input(0), shape=shape)]


@ops.register("Squeeze", since=1)
def squeeze_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    if ctx.has_input(1) and ctx.ints(1) is None:
        return _reshape_to_declared(ctx)
    axes = _axes(ctx)
    if axes is None:
        dims = ctx.input_shape(0)
        if dims is None or None in dims:
            raise ctx.error("squeezing every unit axis of a shape unknown before run time")
        axes = [i for i, d in enumerate(dims) if d == 1]
    if not axes:
        return [ctx.mb.identity(x=ctx.input(0))]
    return [ctx.mb.squeeze(x=ctx.input(0), axes=axes)]


@ops.register("Unsqueeze", since=1)
def unsqueeze_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    if ctx.has_input(1) and ctx.ints(1) is None:
        return _reshape_to_declared(ctx)
    axes = _axes(ctx)
    if not axes:
        raise ctx.error("no axes")
    rank = ctx.input_rank(0) + len(axes)
    return [ctx.mb.expand_dims(x=ctx.input(0), axes=sorted(normalized_axes(axes, rank)))]


@ops.register("Expand", since=8)
def expand_v8(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    word = ctx.mil_dtype(ctx.input_dtype(0))
    mb = ctx.mb
    # Bidirectional broadcasting is elementwise arithmetic with a tensor of the shape.
    if word == "bool":
        falses = mb.fill(shape=_shape_var(ctx, 1), value=False)
        return [mb.logical_or(x=ctx.input(0), y=falses)]
    zero = {"fp32": np.float32(0), "fp16": np.float16(0), "int32": np.int32(0)}[word]
    return [mb.add(x=ctx.input(0), y=mb.fill(shape=_shape_var(ctx, 1), value=zero))]


@ops.register("Tile", since=6)
def tile_v6(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return [ctx.mb.tile(x=ctx.input(0), reps=_shape_var(ctx, 1))]


@ops.register("Shape", since=1)
def shape_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    dims = ctx.input_shape(0)
    if dims is None:
        raise ctx.error("an input of unknown rank")
    rank = len(dims)
    start = int(ctx.attr("start", 0))
    end = ctx.attr("end", None)
    first, last, _ = slice(start, None if end is None else int(end)).indices(rank)
    wanted = dims[first:last]
    if all(d is not None for d in wanted):
        return [ctx.make_constant(np.array(wanted, np.int32), "shape")]
    sizes = ctx.mb.shape(x=ctx.input(0))
    if (first, last) == (0, rank):
        return [sizes]
    return [ctx.mb.slice_by_index(x=sizes, begin=[first], end=[last])]


@ops.register("Pad", since=11)
def pad_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    rank = ctx.input_rank(0)
    mode = str(ctx.attr("mode", "constant"))
    if mode not in MODES:
        raise ctx.error(f"mode={mode!r}")
    pads = ctx.ints(1)
    known_axes = ctx.ints(3) if ctx.has_input(3) else list(range(rank))
    fill_known = not ctx.has_input(2) or ctx.constant_input(2) is not None
    if pads is None or known_axes is None or any(p < 0 for p in pads) or not fill_known:
        return [pad_by_gathers(ctx, mode)]
    axes = normalized_axes(known_axes, rank)
    full = [0] * (2 * rank)
    for i, axis in enumerate(axes):
        full[2 * axis], full[2 * axis + 1] = pads[i], pads[i + len(axes)]
    kwargs: dict[str, Any] = {}
    if mode == "constant":
        fill = ctx.constant_input(2) if ctx.has_input(2) else None
        if ctx.has_input(2) and fill is None:
            raise ctx.error("a constant_value computed at run time")
        value = float(fill.reshape(())) if fill is not None and fill.size else 0.0
        # in x's type: MIL's type check refuses a float32 constant_val beside float16 x
        kwargs["constant_val"] = scalar_like(ctx, value).val
    elif mode in ("reflect", "edge"):
        touched = [axis for axis in range(rank) if full[2 * axis] or full[2 * axis + 1]]
        if touched and min(touched) < rank - 2:
            return [pad_by_gathers(ctx, mode)]  # MIL pads these on the last two axes only
        kwargs["mode"] = "reflect" if mode == "reflect" else "replicate"
        first_kept = rank - 2 if rank >= 2 else 0
        full = full[2 * first_kept :]
    else:
        return [pad_by_gathers(ctx, mode)]  # wrap: MIL's pad has no such mode
    return [ctx.mb.pad(x=ctx.input(0), pad=full, **kwargs)]


@ops.register("ConstantOfShape", since=9)
def constant_of_shape_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    value = ctx.attr("value", None)
    fill = np.zeros((), np.float32) if value is None else np.asarray(value).reshape(())
    shape = ctx.ints(0)
    if shape is not None:
        return [ctx.make_constant(np.full(shape, fill), "filled")]
    held = ctx.make_constant(fill, "value").val
    return [ctx.mb.fill(shape=ctx.input(0), value=held)]


@ops.register("Constant", since=1)
def constant_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    for name in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        found = ctx.attr(name, None)
        if found is not None:
            dtype = np.float32 if "float" in name else np.int64
            return [ctx.make_constant(np.asarray(found, None if name == "value" else dtype))]
    raise ctx.error("a Constant without a numeric value")


@ops.register("Range", since=11)
def range_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    return [ctx.mb.range_1d(start=ctx.input(0), end=ctx.input(1), step=ctx.input(2))]


@ops.register("Size", since=1)
def size_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    dims = ctx.input_shape(0)
    if dims is not None and all(d is not None for d in dims):
        return [ctx.make_constant(np.array(math.prod(d for d in dims if d is not None), np.int32))]
    sizes = ctx.mb.shape(x=ctx.input(0))
    return [ctx.mb.reduce_prod(x=sizes, axes=[0], keep_dims=False)]


@ops.register("DepthToSpace", since=1)
def depth_to_space_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    block = int(ctx.attr("blocksize"))
    if str(ctx.attr("mode", "DCR")) == "CRD":
        return [ctx.mb.pixel_shuffle(x=ctx.input(0), upscale_factor=block)]
    return [ctx.mb.depth_to_space(x=ctx.input(0), block_size=block)]


@ops.register("SpaceToDepth", since=1)
def space_to_depth_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    ctx.mil_dtype(ctx.input_dtype(0))
    block = int(ctx.attr("blocksize"))
    if str(ctx.attr("mode", "DCR")) == "CRD":
        return [ctx.mb.pixel_unshuffle(x=ctx.input(0), downscale_factor=np.uint32(block))]
    return [ctx.mb.space_to_depth(x=ctx.input(0), block_size=block)]
