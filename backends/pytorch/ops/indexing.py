"""Gather/scatter, selection and index-generating ops, and a few layout ops.

GatherElements, GatherND, ScatterElements, ScatterND, Scatter, TensorScatter, OneHot, NonZero,
Compress, Unique, ReverseSequence, Range, Tile, Trilu, EyeLike, Einsum, DepthToSpace, SpaceToDepth,
CenterCropPad and ai.onnx.ml's ArrayFeatureExtractor. Negative indices count from the end, as ONNX
allows; every index output is int64. Sizes are read from the tensors at run time so that symbolic
dims stay dynamic under export.
"""

from __future__ import annotations

from typing import Any

from unframe.backends.pytorch.dtypes import to_torch_dtype
from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ir, ops, torch

_UNSIGNED_WIDE = (torch.uint16, torch.uint32, torch.uint64)


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _wrap(indices: torch.Tensor, size: Any) -> torch.Tensor:
    indices = indices.long()
    return torch.where(indices < 0, indices + size, indices)


def _scalar(value: Any) -> Any:
    """A python number from a scalar (or one-element) tensor, list or number."""
    if isinstance(value, torch.Tensor):
        return value.reshape(-1)[0].item()
    if isinstance(value, list):
        return value[0]
    return value


# -- gathers -----------------------------------------------------------------------------------


def _gather_elements(x: torch.Tensor, indices: torch.Tensor, axis: int) -> torch.Tensor:
    axis = _axis(axis, x.dim())
    return torch.gather(x, axis, _wrap(indices, x.shape[axis]))


@ops.register("GatherElements", since=11)
def gather_elements_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    axis = ctx.attr_int("axis", 0)
    return [ctx.call(_gather_elements, ctx.input(0), ctx.input(1), axis)]


def _nd_positions(
    x: torch.Tensor, indices: torch.Tensor, batch_dims: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``x`` as (batch, cells, *rest) and ``indices`` as (batch, n) linear cell numbers."""
    depth = indices.shape[-1]
    batch = 1
    for size in x.shape[:batch_dims]:
        batch = batch * size
    cells = 1
    for size in x.shape[batch_dims : batch_dims + depth]:
        cells = cells * size
    flat_x = x.reshape(batch, cells, *x.shape[batch_dims + depth :])
    index = indices.long().reshape(batch, -1, depth)
    linear = torch.zeros(index.shape[:2], dtype=torch.long, device=x.device)
    for j in range(depth):
        size = x.shape[batch_dims + j]
        linear = linear * size + _wrap(index[..., j], size)
    return flat_x, linear, depth


def _gather_nd(x: torch.Tensor, indices: torch.Tensor, batch_dims: int) -> torch.Tensor:
    flat_x, linear, depth = _nd_positions(x, indices, batch_dims)
    rows = torch.arange(flat_x.shape[0], device=x.device).unsqueeze(1)
    picked = flat_x[rows, linear]
    return picked.reshape(*indices.shape[:-1], *x.shape[batch_dims + depth :])


@ops.register("GatherND", since=11)
def gather_nd_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_gather_nd, ctx.input(0), ctx.input(1), 0)]


@ops.register("GatherND", since=12)
def gather_nd_v12(node: ir.Node, ctx: BuildContext) -> Outputs:
    batch_dims = ctx.attr_int("batch_dims", 0)
    return [ctx.call(_gather_nd, ctx.input(0), ctx.input(1), batch_dims)]


# -- scatters ----------------------------------------------------------------------------------

_TORCH_REDUCE = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


def _scatter_elements(
    x: torch.Tensor, indices: torch.Tensor, updates: torch.Tensor, axis: int, reduction: str
) -> torch.Tensor:
    axis = _axis(axis, x.dim())
    index = _wrap(indices, x.shape[axis])
    dtype = x.dtype
    if dtype in _UNSIGNED_WIDE or dtype == torch.bool:
        x, updates = x.to(torch.int64), updates.to(torch.int64)
    if reduction == "none":
        out = torch.scatter(x, axis, index, updates)
    else:
        out = torch.scatter_reduce(x, axis, index, updates, _TORCH_REDUCE[reduction])
    return out.to(dtype)


def _scatter_elements_node(ctx: BuildContext, reduction: str) -> Outputs:
    axis = ctx.attr_int("axis", 0)
    x, indices, updates = ctx.input(0), ctx.input(1), ctx.input(2)
    return [ctx.call(_scatter_elements, x, indices, updates, axis, reduction)]


@ops.register("Scatter", since=9)
def scatter_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _scatter_elements_node(ctx, "none")


@ops.register("ScatterElements", since=11)
def scatter_elements_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _scatter_elements_node(ctx, "none")


@ops.register("ScatterElements", since=16)
def scatter_elements_v16(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _scatter_elements_node(ctx, ctx.attr_str("reduction", "none"))


def _scatter_nd(
    x: torch.Tensor, indices: torch.Tensor, updates: torch.Tensor, reduction: str
) -> torch.Tensor:
    batched, linear, depth = _nd_positions(x, indices, 0)
    dtype = x.dtype
    flat_x = batched[0].clone()
    rows = updates.reshape(-1, *x.shape[depth:])
    if dtype in _UNSIGNED_WIDE or dtype == torch.bool:
        flat_x, rows = flat_x.to(torch.int64), rows.to(torch.int64)
    target = linear.reshape(-1)
    if reduction == "none":
        flat_x[target] = rows.to(flat_x.dtype)
    elif reduction == "add":
        flat_x = flat_x.index_add(0, target, rows.to(flat_x.dtype))
    else:
        flat_x = flat_x.index_reduce(0, target, rows.to(flat_x.dtype), _TORCH_REDUCE[reduction])
    return flat_x.reshape(x.shape).to(dtype)


@ops.register("ScatterND", since=11)
def scatter_nd_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_scatter_nd, ctx.input(0), ctx.input(1), ctx.input(2), "none")]


@ops.register("ScatterND", since=16)
def scatter_nd_v16(node: ir.Node, ctx: BuildContext) -> Outputs:
    reduction = ctx.attr_str("reduction", "none")
    return [ctx.call(_scatter_nd, ctx.input(0), ctx.input(1), ctx.input(2), reduction)]


def _tensor_scatter(
    cache: torch.Tensor,
    update: torch.Tensor,
    write_indices: torch.Tensor | None,
    axis: int,
    circular: bool,
) -> torch.Tensor:
    axis = _axis(axis, cache.dim())
    length, count = cache.shape[axis], update.shape[axis]
    batch = cache.shape[0]
    starts = (
        torch.zeros((batch,), dtype=torch.long, device=cache.device)
        if write_indices is None
        else write_indices.long().reshape(batch)
    )
    positions = starts.unsqueeze(1) + torch.arange(count, device=cache.device)  # (batch, count)
    if circular:
        positions = positions % length
    shape = [1] * cache.dim()
    shape[0], shape[axis] = batch, count
    index = positions.reshape(shape).expand(update.shape)
    return torch.scatter(cache, axis, index, update)


@ops.register("TensorScatter", since=24)
def tensor_scatter_v24(node: ir.Node, ctx: BuildContext) -> Outputs:
    axis = ctx.attr_int("axis", -2)
    circular = ctx.attr_str("mode", "linear") == "circular"
    cache, update, write = ctx.input(0), ctx.input(1), ctx.optional_input(2)
    return [ctx.call(_tensor_scatter, cache, update, write, axis, circular)]


# -- selection ---------------------------------------------------------------------------------


def _one_hot(indices: torch.Tensor, depth: Any, values: torch.Tensor, axis: int) -> torch.Tensor:
    depth = int(_scalar(depth))
    index = indices.long()
    index = torch.where(index < 0, index + depth, index)
    axis = _axis(axis, index.dim() + 1)
    shape = [1] * (index.dim() + 1)
    shape[axis] = depth
    classes = torch.arange(depth, device=indices.device).reshape(shape)
    hot = index.unsqueeze(axis) == classes
    return torch.where(hot, values[1], values[0])


@ops.register("OneHot", since=9)
def one_hot_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    depth: Any = ctx.constant_input(1)
    depth = ctx.input(1) if depth is None else depth.reshape(-1)[0].item()
    axis = ctx.attr_int("axis", -1)
    return [ctx.call(_one_hot, ctx.input(0), depth, ctx.input(2), axis)]


def _non_zero(x: torch.Tensor) -> torch.Tensor:
    return torch.nonzero(x.reshape(1) if x.dim() == 0 else x).t()


@ops.register("NonZero", since=9)
def non_zero_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_non_zero, ctx.input(0))]


def _compress(x: torch.Tensor, condition: torch.Tensor, axis: int | None) -> torch.Tensor:
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = _axis(axis, x.dim())
    keep = torch.nonzero(condition.reshape(-1).bool()).reshape(-1)
    return torch.index_select(x, axis, keep)


@ops.register("Compress", since=9)
def compress_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    axis = ctx.attr("axis", None)
    return [ctx.call(_compress, ctx.input(0), ctx.input(1), axis)]


def _unique(
    x: torch.Tensor, axis: int | None, sorted_: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = _axis(axis, x.dim())
    values, inverse, counts = torch.unique(
        x, sorted=True, return_inverse=True, return_counts=True, dim=axis
    )
    inverse = inverse.reshape(-1)
    length = x.shape[axis]
    first = torch.full((values.shape[axis],), length, dtype=torch.long, device=x.device)
    first = first.scatter_reduce(0, inverse, torch.arange(length, device=x.device), "amin")
    if not sorted_:
        order = torch.argsort(first)
        rank = torch.argsort(order)
        values = values.index_select(axis, order)
        first, counts, inverse = first[order], counts[order], rank[inverse]
    return values, first, inverse, counts


@ops.register("Unique", since=11)
def unique_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    axis = ctx.attr("axis", None)
    result = ctx.call(_unique, ctx.input(0), axis, ctx.attr_int("sorted", 1))
    return ctx.unpack(result, 4)


def _reverse_sequence(
    x: torch.Tensor, lengths: torch.Tensor, batch_axis: int, time_axis: int
) -> torch.Tensor:
    steps = torch.arange(x.shape[time_axis], device=x.device).unsqueeze(0)  # (1, T)
    lens = lengths.long().unsqueeze(1)  # (B, 1)
    source = torch.where(steps < lens, lens - 1 - steps, steps)  # (B, T)
    if batch_axis > time_axis:
        source = source.t()
    shape = [1] * x.dim()
    shape[batch_axis], shape[time_axis] = x.shape[batch_axis], x.shape[time_axis]
    return torch.gather(x, time_axis, source.reshape(shape).expand(x.shape))


@ops.register("ReverseSequence", since=10)
def reverse_sequence_v10(node: ir.Node, ctx: BuildContext) -> Outputs:
    batch_axis = ctx.attr_int("batch_axis", 1)
    time_axis = ctx.attr_int("time_axis", 0)
    return [ctx.call(_reverse_sequence, ctx.input(0), ctx.input(1), batch_axis, time_axis)]


# -- generators --------------------------------------------------------------------------------


def _range(start: Any, limit: Any, delta: Any, dtype: torch.dtype, stash: torch.dtype) -> Any:
    start, limit, delta = _scalar(start), _scalar(limit), _scalar(delta)
    compute = stash if dtype in (torch.float16, torch.bfloat16) else dtype
    return torch.arange(start, limit, delta, dtype=compute).to(dtype)


def _range_node(ctx: BuildContext, stash: torch.dtype) -> Outputs:
    args: list[Any] = []
    for i in range(3):
        array = ctx.constant_input(i)
        args.append(ctx.input(i) if array is None else array.reshape(-1)[0].item())
    dtype = ctx.input_dtype(0) or ctx.output_dtype(0) or torch.float32
    return [ctx.call(_range, *args, dtype, stash)]


@ops.register("Range", since=11)
def range_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _range_node(ctx, torch.float32)


@ops.register("Range", since=27)
def range_v27(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _range_node(ctx, to_torch_dtype(ctx.attr_int("stash_type", 1)))


def _tile_axis(x: torch.Tensor, tiles: Any, axis: Any) -> torch.Tensor:
    repeats = [1] * x.dim()
    repeats[int(_scalar(axis))] = int(_scalar(tiles))
    return x.repeat(repeats)


@ops.register("Tile", since=1)
def tile_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_tile_axis, ctx.input(0), ctx.input(1), ctx.input(2))]


@ops.register("Tile", since=6)
def tile_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.tile, ctx.input(0), ctx.int_list(1))]


def _trilu(x: torch.Tensor, k: Any, upper: int) -> torch.Tensor:
    k = 0 if k is None else int(_scalar(k))
    return torch.triu(x, k) if upper else torch.tril(x, k)


@ops.register("Trilu", since=14)
def trilu_v14(node: ir.Node, ctx: BuildContext) -> Outputs:
    k: Any = ctx.constant_input(1)
    k = ctx.optional_input(1) if k is None else int(k.reshape(-1)[0])
    return [ctx.call(_trilu, ctx.input(0), k, ctx.attr_int("upper", 1))]


def _eye_like(x: torch.Tensor, k: int, dtype: torch.dtype | None) -> torch.Tensor:
    rows = torch.arange(x.shape[0], device=x.device).unsqueeze(1)
    cols = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    return (cols - rows == k).to(dtype or x.dtype)


@ops.register("EyeLike", since=9)
def eye_like_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    dtype_attr = ctx.attr("dtype", None)
    dtype = None if dtype_attr is None else to_torch_dtype(int(dtype_attr))
    return [ctx.call(_eye_like, ctx.input(0), ctx.attr_int("k", 0), dtype)]


# -- products and layout -----------------------------------------------------------------------


def _einsum(equation: str, *operands: torch.Tensor) -> torch.Tensor:
    dtype = operands[0].dtype
    if not (dtype.is_floating_point or dtype.is_complex):
        # CPU matmul kernels lack most integer types; int64 is exact for the sizes seen here.
        return torch.einsum(equation, *(t.to(torch.int64) for t in operands)).to(dtype)
    return torch.einsum(equation, *operands)


@ops.register("Einsum", since=12)
def einsum_v12(node: ir.Node, ctx: BuildContext) -> Outputs:
    equation = ctx.attr_str("equation").replace(" ", "")
    operands = [ctx.input(i) for i in range(ctx.num_inputs)]
    return [ctx.call(_einsum, equation, *operands)]


def _depth_to_space(x: torch.Tensor, block: int, crd: bool) -> torch.Tensor:
    n, c, h, w = x.shape
    if crd:
        y = x.reshape(n, -1, block, block, h, w).permute(0, 1, 4, 2, 5, 3)
    else:
        y = x.reshape(n, block, block, -1, h, w).permute(0, 3, 4, 1, 5, 2)
    return y.reshape(n, -1, h * block, w * block)


@ops.register("DepthToSpace", since=1)
def depth_to_space_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_depth_to_space, ctx.input(0), ctx.attr_int("blocksize"), False)]


@ops.register("DepthToSpace", since=11)
def depth_to_space_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    crd = ctx.attr_str("mode", "DCR") == "CRD"
    return [ctx.call(_depth_to_space, ctx.input(0), ctx.attr_int("blocksize"), crd)]


def _space_to_depth(x: torch.Tensor, block: int, crd: bool) -> torch.Tensor:
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // block, block, w // block, block)
    y = y.permute(0, 1, 3, 5, 2, 4) if crd else y.permute(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * block * block, h // block, w // block)


@ops.register("SpaceToDepth", since=1)
def space_to_depth_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_space_to_depth, ctx.input(0), ctx.attr_int("blocksize"), False)]


@ops.register("SpaceToDepth", since=28)
def space_to_depth_v28(node: ir.Node, ctx: BuildContext) -> Outputs:
    crd = ctx.attr_str("mode", "DCR") == "CRD"
    return [ctx.call(_space_to_depth, ctx.input(0), ctx.attr_int("blocksize"), crd)]


def _center_crop_pad(x: torch.Tensor, shape: list[Any], axes: list[int] | None) -> torch.Tensor:
    rank = x.dim()
    axes = list(range(rank)) if axes is None else [_axis(a, rank) for a in axes]
    out = x
    for axis, target in zip(axes, shape, strict=False):
        # Branch-free (sym_min/sym_max) so that a symbolic size needs no guard either way.
        size = out.shape[axis]
        kept = torch.sym_min(size, target)
        start = (size - kept) // 2
        out = out.index_select(axis, torch.arange(kept, device=out.device) + start)
        extra = torch.sym_max(target - size, 0)
        pads = [0, 0] * (rank - 1 - axis) + [extra // 2, extra - extra // 2]
        out = torch.nn.functional.pad(out, pads)
    return out


@ops.register("CenterCropPad", since=18)
def center_crop_pad_v18(node: ir.Node, ctx: BuildContext) -> Outputs:
    axes = ctx.attr_ints("axes", None)
    return [ctx.call(_center_crop_pad, ctx.input(0), ctx.int_list(1), axes)]


def _array_feature_extractor(x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    picked = torch.index_select(x, x.dim() - 1, indices.long().reshape(-1))
    return picked.reshape(1, -1) if x.dim() == 1 else picked


@ops.register("ArrayFeatureExtractor", since=1, domain="ai.onnx.ml")
def array_feature_extractor_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_array_feature_extractor, ctx.input(0), ctx.input(1))]
