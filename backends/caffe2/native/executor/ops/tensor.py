"""Shape and data-movement ops: Concat, Split, Reshape, Transpose, Slice, Gather, MatMul..."""

from __future__ import annotations

import math

import numpy as np

from unframe.backends.caffe2.native.executor.registry import (
    NUMERIC_TYPES,
    KernelTypes,
    OpContext,
    caffe2_op,
    canonical_axis,
)

# TransposeOp::RunOnDevice: DispatchHelper<TensorTypes<float, double, int, int64_t>>.
_TRANSPOSE = KernelTypes.of("transpose_op.h", *NUMERIC_TYPES)
# TileOp<CPUContext>::RunOnDevice: TensorTypes<at::Half, std::uint8_t, std::int32_t, std::int64_t,
# float, double, std::string>.
_TILE = KernelTypes.of("tile_op.cc", np.float16, np.uint8, np.int32, np.int64, np.float32,
                       np.float64, object)  # fmt: skip
# MatMulOp<float, CPUContext>; BatchMatMulOp: DispatchHelper<TensorTypes<float>>.
_MATMUL = KernelTypes.of("matmul_op.cc", np.float32)
_BATCH_MATMUL = KernelTypes.of("batch_matmul_op.h", np.float32)
# GatherOp copies DATA of any type; it dispatches on INDICES: TensorTypes<int32_t, int64_t>.
_GATHER_INDICES = KernelTypes.of("gather_op.h", np.int32, np.int64)


def _order_axis(ctx: OpContext) -> int:
    """``axis`` where given, else the channel axis of ``order`` (Concat's and Split's default)."""
    if ctx.has("axis"):
        if ctx.has("order"):
            raise ctx.error("give axis or order, not both")
        return ctx.arg_int("axis", 1)
    return ctx.order().index("C")


def _int_list(ctx: OpContext, value: np.ndarray, what: str) -> list[int]:
    if value.ndim > 1 or not np.issubdtype(value.dtype, np.integer):
        raise ctx.error(f"{what} must be a 1-D integer tensor, got {value.dtype} {value.shape}")
    return [int(v) for v in value.reshape(-1)]


@caffe2_op("Concat")
def concat(ctx: OpContext) -> list[np.ndarray]:
    """Joins the inputs along ``axis`` (or stacks them with add_axis=1); output 1 is split_info."""
    inputs = [ctx.input(i) for i in range(max(ctx.num_inputs, 1))]
    add_axis = bool(ctx.arg_int("add_axis", 0))
    axis = canonical_axis(ctx, _order_axis(ctx), inputs[0].ndim, extra=int(add_axis))
    if any(x.dtype != inputs[0].dtype for x in inputs):
        raise ctx.error(f"inputs have different types: {sorted({str(x.dtype) for x in inputs})}")
    try:
        if add_axis:
            y = np.stack(inputs, axis=axis)
            sizes = [1] * len(inputs)
        else:
            y = np.concatenate(inputs, axis=axis)
            sizes = [x.shape[axis] for x in inputs]
    except ValueError as error:
        shapes = ", ".join(str(x.shape) for x in inputs)
        raise ctx.error(f"cannot join shapes {shapes} along axis {axis}") from error
    return [y, np.asarray(sizes, dtype=np.int32)]


@caffe2_op("Split")
def split(ctx: OpContext) -> list[np.ndarray]:
    """Splits along ``axis`` by ``split`` (argument or input 1), else into equal parts."""
    x = ctx.input(0)
    add_axis = bool(ctx.arg_int("add_axis", 0))
    axis = canonical_axis(ctx, _order_axis(ctx), x.ndim)
    parts = ctx.num_outputs
    if ctx.num_inputs > 1:
        if ctx.has("split"):
            raise ctx.error("give split as an argument or as an input, not both")
        sizes = _int_list(ctx, ctx.input(1), "the split input")
    elif ctx.has("split"):
        sizes = ctx.arg_ints("split")
    else:
        if parts == 0 or x.shape[axis] % parts:
            raise ctx.error(f"dimension {x.shape[axis]} does not split into {parts} equal parts")
        sizes = [x.shape[axis] // parts] * parts
    if len(sizes) != parts or sum(sizes) != x.shape[axis] or any(s < 0 for s in sizes):
        raise ctx.error(
            f"split sizes {sizes} must be {parts} non-negative values summing to {x.shape[axis]}"
        )
    if add_axis and any(s != 1 for s in sizes):
        raise ctx.error("with add_axis=1 every part must have size 1")
    bounds = np.cumsum([0, *sizes])
    outputs = []
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        part = np.take(x, np.arange(start, stop), axis=axis)
        outputs.append(np.squeeze(part, axis=axis) if add_axis else part)
    return outputs


@caffe2_op("Reshape")
def reshape(ctx: OpContext) -> list[np.ndarray]:
    """Reshapes to ``shape`` (argument or input 1): 0 copies the input dim, -1 is inferred.

    Output 1 is the old shape, as int64.
    """
    x = ctx.input(0)
    if ctx.num_inputs > 1:
        if ctx.has("shape"):
            raise ctx.error("give the shape as an argument or as an input, not both")
        shape = _int_list(ctx, ctx.input(1), "the shape input")
    elif ctx.has("shape"):
        shape = ctx.arg_ints("shape")
    else:
        raise ctx.error("needs the new shape, as the shape argument or as input 1")
    actual = []
    for i, dim in enumerate(shape):
        if dim == 0:
            if i >= x.ndim:
                raise ctx.error(f"shape {shape}: 0 at position {i} has no input dim to copy")
            actual.append(x.shape[i])
        elif dim < -1:
            raise ctx.error(f"shape {shape} has an invalid dimension {dim}")
        else:
            actual.append(dim)
    unknown = [i for i, dim in enumerate(actual) if dim == -1]
    if len(unknown) > 1:
        raise ctx.error(f"shape {shape} has more than one -1")
    known = math.prod(d for d in actual if d != -1)
    if unknown:
        if known == 0 or x.size % known:
            raise ctx.error(f"cannot reshape {x.shape} ({x.size} elements) to {shape}")
        actual[unknown[0]] = x.size // known
    if math.prod(actual) != x.size:
        raise ctx.error(f"cannot reshape {x.shape} ({x.size} elements) to {shape}")
    return [x.reshape(actual), np.asarray(x.shape, dtype=np.int64)]


@caffe2_op("Flatten")
def flatten(ctx: OpContext) -> list[np.ndarray]:
    """2-D: the dims before ``axis`` (default 1) multiplied together, and the rest."""
    x = ctx.input(0)
    axis = canonical_axis(ctx, ctx.arg_int("axis", 1), x.ndim, extra=1)
    return [x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))]


@caffe2_op("FlattenToVec")
def flatten_to_vec(ctx: OpContext) -> list[np.ndarray]:
    return [ctx.input(0).reshape(-1)]


@caffe2_op("Transpose")
def transpose(ctx: OpContext) -> list[np.ndarray]:
    """Permutes the axes by ``axes`` (default: reversed)."""
    x = ctx.input(0)
    _TRANSPOSE.check(ctx, x)
    axes = ctx.arg_ints("axes") or list(range(x.ndim))[::-1]
    if sorted(axes) != list(range(x.ndim)):
        raise ctx.error(f"axes {axes} is not a permutation of a {x.ndim}-D input's axes")
    return [np.ascontiguousarray(np.transpose(x, axes))]


@caffe2_op("Squeeze")
def squeeze(ctx: OpContext) -> list[np.ndarray]:
    """Removes the size-1 dims listed in ``dims``."""
    x = ctx.input(0)
    dims = sorted({canonical_axis(ctx, d, x.ndim) for d in ctx.arg_ints("dims")})
    for d in dims:
        if x.shape[d] != 1:
            raise ctx.error(f"cannot squeeze dim {d} of shape {x.shape}: its size is not 1")
    return [np.squeeze(x, axis=tuple(dims)) if dims else x.copy()]


@caffe2_op("ExpandDims")
def expand_dims(ctx: OpContext) -> list[np.ndarray]:
    """Inserts size-1 dims at the positions ``dims`` of the output."""
    x = ctx.input(0)
    dims = sorted(set(ctx.arg_ints("dims")))
    if not dims:
        raise ctx.error("argument 'dims' must list at least one dimension")
    if dims[0] < 0 or dims[-1] >= x.ndim + len(dims):
        raise ctx.error(f"dims {dims} out of range for a {x.ndim}-D input")
    shape = list(x.shape)
    for d in dims:
        shape.insert(d, 1)
    return [x.reshape(shape)]


@caffe2_op("Tile")
def tile(ctx: OpContext) -> list[np.ndarray]:
    """Repeats the whole tensor ``tiles`` times along ``axis`` (inputs 1, 2 may give them)."""
    x = ctx.input(0)
    _TILE.check(ctx, x)
    tiles = ctx.arg_int("tiles", 1)
    axis = ctx.arg_int("axis", 0)
    if ctx.num_inputs > 1:
        tiles = int(np.asarray(ctx.input(1)).reshape(-1)[0])
    if ctx.num_inputs > 2:
        axis = int(np.asarray(ctx.input(2)).reshape(-1)[0])
    axis = canonical_axis(ctx, axis, x.ndim)
    if tiles < 0:
        raise ctx.error(f"tiles must be non-negative, got {tiles}")
    reps = [1] * x.ndim
    reps[axis] = tiles
    return [np.tile(x, reps)]


@caffe2_op("Slice")
def slice_op(ctx: OpContext) -> list[np.ndarray]:
    """data[starts:ends] per dim; negative indices count from dim + 1, so -1 means the end."""
    x = ctx.input(0)
    if ctx.num_inputs > 1:
        if ctx.has("starts") or ctx.has("ends"):
            raise ctx.error("give starts/ends as arguments or as inputs, not both")
        starts = _int_list(ctx, ctx.input(1), "starts")
        ends = _int_list(ctx, ctx.input(2), "ends")
    else:
        starts, ends = ctx.arg_ints("starts"), ctx.arg_ints("ends")
    if len(starts) != len(ends) or len(starts) > x.ndim:
        raise ctx.error(f"starts {starts} and ends {ends} must have one value per leading dim")
    index = []
    for dim, (start, end) in enumerate(zip(starts, ends, strict=True)):
        size = x.shape[dim]
        start = size + 1 + start if start < 0 else start
        end = size + 1 + end if end < 0 else end
        start, end = min(start, size), min(end, size)
        if start < 0 or end < start:
            raise ctx.error(f"dim {dim} (size {size}): invalid slice [{start}, {end})")
        index.append(slice(start, end))
    return [x[tuple(index)].copy()]


def _gather(ctx: OpContext, axis: int) -> list[np.ndarray]:
    data, indices = ctx.input(0), ctx.input(1)
    axis = canonical_axis(ctx, axis, data.ndim)
    if ctx.op.type == "Gather":
        _GATHER_INDICES.check(ctx, indices, "INDICES (input 1)")
    elif not np.issubdtype(indices.dtype, np.integer):
        raise ctx.error(f"indices must be integers, got {indices.dtype}")
    size = data.shape[axis]
    idx = indices.astype(np.int64)
    if ctx.arg_int("wrap_indices", 0):
        idx = np.where(idx < 0, idx + size, idx)
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ctx.error(f"an index is out of range for dimension {axis} of size {size}")
    return [np.take(data, idx, axis=axis)]


@caffe2_op("Gather")
def gather(ctx: OpContext) -> list[np.ndarray]:
    """data.shape[:axis] + indices.shape + data.shape[axis + 1:] (``axis`` default 0)."""
    return _gather(ctx, ctx.arg_int("axis", 0))


@caffe2_op("BatchGather")
def batch_gather(ctx: OpContext) -> list[np.ndarray]:
    """Gather along axis 1."""
    return _gather(ctx, 1)


@caffe2_op("MatMul")
def matmul(ctx: OpContext) -> list[np.ndarray]:
    """2-D product of A and B, each flattened to 2-D at axis_a/axis_b and optionally transposed."""
    a, b = ctx.input(0), ctx.input(1)
    _MATMUL.check(ctx, a)
    axis_a = canonical_axis(ctx, ctx.arg_int("axis_a", 1), a.ndim)
    axis_b = canonical_axis(ctx, ctx.arg_int("axis_b", 1), b.ndim)
    a2 = a.reshape(math.prod(a.shape[:axis_a]), -1)
    b2 = b.reshape(math.prod(b.shape[:axis_b]), -1)
    if ctx.arg_int("trans_a", 0):
        a2 = a2.T
    if ctx.arg_int("trans_b", 0):
        b2 = b2.T
    if a2.shape[1] != b2.shape[0]:
        raise ctx.error(f"inner dimensions differ: {a2.shape} x {b2.shape}")
    return [a2 @ b2]


@caffe2_op("BatchMatMul")
def batch_matmul(ctx: OpContext) -> list[np.ndarray]:
    """Matrix products over the last two dims; batch dims must match unless broadcast=1."""
    a, b = ctx.input(0), ctx.input(1)
    _BATCH_MATMUL.check(ctx, a)
    broadcast = bool(ctx.arg_int("broadcast", 0))
    if not broadcast and (a.ndim < 2 or a.ndim != b.ndim or a.shape[:-2] != b.shape[:-2]):
        raise ctx.error(f"without broadcast=1, A {a.shape} and B {b.shape} need equal batch dims")
    if ctx.arg_int("trans_a", 0) and a.ndim >= 2:
        a = np.swapaxes(a, -1, -2)
    if ctx.arg_int("trans_b", 0) and b.ndim >= 2:
        b = np.swapaxes(b, -1, -2)
    try:
        return [np.matmul(a, b)]
    except ValueError as error:
        raise ctx.error(f"cannot multiply {a.shape} by {b.shape}") from error


@caffe2_op("Shape")
def shape(ctx: OpContext) -> list[np.ndarray]:
    """The input's shape as int64, or only the dims listed in ``axes``."""
    x = ctx.input(0)
    axes = [canonical_axis(ctx, a, x.ndim) for a in ctx.arg_ints("axes")]
    dims = [x.shape[a] for a in axes] if axes else list(x.shape)
    return [np.asarray(dims, dtype=np.int64)]


@caffe2_op("Size")
def size(ctx: OpContext) -> list[np.ndarray]:
    """The number of elements, as a 0-D int64 tensor."""
    return [np.asarray(ctx.input(0).size, dtype=np.int64)]


@caffe2_op("ChannelShuffle")
def channel_shuffle(ctx: OpContext) -> list[np.ndarray]:
    """Output channel k * group + g takes input channel g * (C / group) + k."""
    x = ctx.input(0)
    group = ctx.arg_int("group", 1)
    order = ctx.order()
    xc = np.moveaxis(x, -1, 1) if order == "NHWC" else x
    c = xc.shape[1]
    if group <= 0 or c % group:
        raise ctx.error(f"{c} channels do not split into {group} groups")
    shuffled = xc.reshape(xc.shape[0], group, c // group, *xc.shape[2:]).swapaxes(1, 2)
    y = shuffled.reshape(xc.shape)
    return [np.ascontiguousarray(np.moveaxis(y, 1, -1) if order == "NHWC" else y)]


@caffe2_op(
    "Copy",
    "Alias",
    "StopGradient",
    "EnsureCPUOutput",
    "CopyFromCPUInput",
    "CopyCPUToGPU",
    "CopyGPUToCPU",
    "EnsureDense",
)
def identity(ctx: OpContext) -> list[np.ndarray]:
    """The input, unchanged (device copies are no-ops on one CPU)."""
    return [ctx.input(0).copy()]


@caffe2_op("ResizeNearest")
def resize_nearest(ctx: OpContext) -> list[np.ndarray]:
    """Nearest-neighbour resize of a 4-D image by height_scale/width_scale (or input 1)."""
    x = ctx.input(0)
    order = ctx.order()
    if x.ndim != 4:
        raise ctx.error(f"expects a 4-D input, got shape {x.shape}")
    h_scale, w_scale = ctx.arg_float("height_scale", 1.0), ctx.arg_float("width_scale", 1.0)
    if ctx.num_inputs > 1:
        scales = np.asarray(ctx.input(1), dtype=np.float64).reshape(-1)
        if scales.size != 2:
            raise ctx.error(f"the scales input must hold [height_scale, width_scale], got {scales}")
        h_scale, w_scale = float(scales[0]), float(scales[1])
    if h_scale <= 0 or w_scale <= 0:
        raise ctx.error(f"scales must be positive, got {h_scale}, {w_scale}")
    xc = np.moveaxis(x, -1, 1) if order == "NHWC" else x
    height, width = xc.shape[2:]
    out_h, out_w = int(height * h_scale), int(width * w_scale)
    rows = np.minimum((np.arange(out_h) / h_scale).astype(np.int64), height - 1)
    cols = np.minimum((np.arange(out_w) / w_scale).astype(np.int64), width - 1)
    y = xc[:, :, rows][:, :, :, cols]
    return [np.ascontiguousarray(np.moveaxis(y, 1, -1) if order == "NHWC" else y)]
