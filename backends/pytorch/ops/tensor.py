"""Shape, layout, indexing, cast and constant ops.

Shape tensors are tracked element-wise (``ctx.set_shape_elements``) through Shape, Gather, Slice,
Concat, Unsqueeze, Squeeze, Cast and Identity, so that Reshape/Expand of a computed shape keeps
symbolic sizes under ``torch.export`` instead of baking the example's.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from unframe.backends.pytorch import fx_functions
from unframe.backends.pytorch.dtypes import EMULATED, to_torch_dtype
from unframe.backends.pytorch.ops._common import (
    BuildContext,
    Outputs,
    fx,
    ir,
    normalize_axis,
    np,
    ops,
    torch,
)

# -- constants ---------------------------------------------------------------------------------


@ops.register("Constant", since=1)
def constant_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    array: Any = None
    for name in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if ctx.has_attr(name):
            array = ctx.attr(name)
            break
    if array is None:
        raise ctx.error("Constant without a numeric value attribute (sparse/string unsupported)")
    if isinstance(array, float) or (
        isinstance(array, list) and array and isinstance(array[0], float)
    ):
        array = np.asarray(array, dtype=np.float32)
    elif not isinstance(array, np.ndarray):
        array = np.asarray(array, dtype=np.int64)
    return [ctx.make_constant(array)]


@ops.register("ConstantOfShape", since=9)
def constant_of_shape_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    value = ctx.attr("value", None)
    array = np.zeros((1,), dtype=np.float32) if value is None else np.asarray(value).reshape(-1)
    fill = array[0].item()
    dtype = to_torch_dtype(ir.DataType.from_numpy(array.dtype))
    return [ctx.call(torch.full, ctx.int_list(0), fill, dtype=dtype)]


@ops.register("Identity", since=1)
def identity_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.input(0)]


# -- shapes ------------------------------------------------------------------------------------


def _shape(ctx: BuildContext, start: int, end: int | None) -> Outputs:
    x = ctx.input(0)
    rank = ctx.input_rank(0)
    if rank is None:
        full = ctx.call(fx_functions.shape_tensor, ctx.call(list, ctx.call(getattr, x, "shape")))
        return [ctx.call(operator.getitem, full, slice(start, end))]
    dims = list(range(rank))[slice(start, end)]
    elements: list[int | fx.Node] = [ctx.size(x, d) for d in dims]
    return [ctx.set_shape_elements(ctx.call(fx_functions.shape_tensor, elements), elements)]


@ops.register("Shape", since=1)
def shape_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _shape(ctx, 0, None)


@ops.register("Shape", since=15)
def shape_v15(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _shape(ctx, ctx.attr_int("start", 0), ctx.attr("end", None))


@ops.register("Size", since=1)
def size_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.scalar_tensor, ctx.method("numel", ctx.input(0)), dtype=torch.int64)]


def _onnx_reshape(x: torch.Tensor, shape: list[Any], allowzero: int) -> torch.Tensor:
    if not allowzero:
        shape = [x.shape[i] if isinstance(s, int) and s == 0 else s for i, s in enumerate(shape)]
    return torch.reshape(x, shape)


def _reshape(ctx: BuildContext, allowzero: int) -> Outputs:
    shape = ctx.int_list(1)
    if (
        isinstance(shape, list)
        and not allowzero
        and any(isinstance(s, int) and s == 0 for s in shape)
    ):
        x = ctx.input(0)
        shape = [
            ctx.size(x, i) if isinstance(s, int) and s == 0 else s for i, s in enumerate(shape)
        ]
    elif not isinstance(shape, list):
        return [ctx.call(_onnx_reshape, ctx.input(0), shape, allowzero)]
    out = ctx.call(torch.reshape, ctx.input(0), shape)
    elements = ctx.shape_elements(0)
    target = ctx.constant_input(1)
    if elements is not None and ctx.constant_input(0) is None and target is not None:
        # A shape vector reshaped to 1-D (or a single size to a scalar) keeps its elements.
        if target.size == 1 and int(target.reshape(-1)[0]) in (-1, len(elements)):
            ctx.set_shape_elements(out, elements)
        elif target.size == 0 and len(elements) == 1:
            ctx.set_shape_elements(out, elements)
    return [out]


@ops.register("Reshape", since=5)
def reshape_v5(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _reshape(ctx, 0)


@ops.register("Reshape", since=14)
def reshape_v14(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _reshape(ctx, ctx.attr_int("allowzero", 0))


@ops.register("Flatten", since=1)
def flatten_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    axis = ctx.attr_int("axis", 1)
    return [ctx.call(_flatten, ctx.input(0), axis)]


def _flatten(x: torch.Tensor, axis: int) -> torch.Tensor:
    axis = axis + x.dim() if axis < 0 else axis
    outer = 1
    for size in x.shape[:axis]:
        outer = outer * size
    return x.reshape(outer, -1) if x.numel() or outer else x.reshape(0, 0)


def _expand(x: torch.Tensor, shape: list[Any]) -> torch.Tensor:
    return x.expand(torch.broadcast_shapes(tuple(x.shape), tuple(shape)))


@ops.register("Expand", since=8)
def expand_v8(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_expand, ctx.input(0), ctx.int_list(1))]


@ops.register("Transpose", since=1)
def transpose_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    perm = ctx.attr_ints("perm", None)
    if perm is None:
        rank = ctx.input_rank(0)
        if rank is None:
            return [ctx.call(_reverse_dims, ctx.input(0))]
        perm = list(reversed(range(rank)))
    return [ctx.call(torch.permute, ctx.input(0), perm)]


def _reverse_dims(x: torch.Tensor) -> torch.Tensor:
    return x.permute(*reversed(range(x.dim())))


def _squeeze(x: torch.Tensor, axes: list[int] | None) -> torch.Tensor:
    if axes is None:
        return x.squeeze()
    return x.squeeze(tuple(a + x.dim() if a < 0 else a for a in axes)) if axes else x


def _squeeze_elements(ctx: BuildContext, out: fx.Node) -> fx.Node:
    elements = ctx.shape_elements(0)
    if elements is not None and len(elements) == 1:
        ctx.set_shape_elements(out, elements)
    return out


@ops.register("Squeeze", since=1)
def squeeze_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [_squeeze_elements(ctx, ctx.call(_squeeze, ctx.input(0), ctx.attr_ints("axes", None)))]


@ops.register("Squeeze", since=13)
def squeeze_v13(node: ir.Node, ctx: BuildContext) -> Outputs:
    axes = ctx.int_list(1) if ctx.has_input(1) else None
    return [_squeeze_elements(ctx, ctx.call(_squeeze, ctx.input(0), axes))]


def _unsqueeze(x: torch.Tensor, axes: list[int]) -> torch.Tensor:
    rank = x.dim() + len(axes)
    for axis in sorted(a + rank if a < 0 else a for a in axes):
        x = x.unsqueeze(axis)
    return x


def _unsqueeze_node(ctx: BuildContext, axes: Any) -> Outputs:
    x = ctx.input(0)
    out = ctx.call(_unsqueeze, x, axes)
    elements = ctx.shape_elements(0)
    if elements is not None and len(elements) == 1 and ctx.input_rank(0) == 0:
        ctx.set_shape_elements(out, elements)
    elif ctx.input_rank(0) == 0 and isinstance(axes, list) and len(axes) == 1:
        # A scalar (e.g. a Gather of a Shape) becomes a 1-element shape piece.
        scalar = ctx.method("item", x) if elements is None else elements[0]
        if elements is not None:
            ctx.set_shape_elements(out, [scalar])
    return [out]


@ops.register("Unsqueeze", since=1)
def unsqueeze_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _unsqueeze_node(ctx, ctx.attr_ints("axes"))


@ops.register("Unsqueeze", since=13)
def unsqueeze_v13(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _unsqueeze_node(ctx, ctx.int_list(1))


@ops.register("Concat", since=4)
def concat_v4(node: ir.Node, ctx: BuildContext) -> Outputs:
    axis = ctx.attr_int("axis")
    parts = [ctx.input(i) for i in range(ctx.num_inputs) if ctx.has_input(i)]
    out = ctx.call(torch.cat, parts, axis)
    pieces = [ctx.shape_elements(i) for i in range(ctx.num_inputs) if ctx.has_input(i)]
    if all(p is not None for p in pieces) and any(
        ctx.constant_input(i) is None for i in range(ctx.num_inputs) if ctx.has_input(i)
    ):
        ctx.set_shape_elements(out, [e for p in pieces if p is not None for e in p])
    return [out]


# -- indexing ----------------------------------------------------------------------------------


def _gather(x: torch.Tensor, indices: torch.Tensor, axis: int) -> torch.Tensor:
    axis = axis + x.dim() if axis < 0 else axis
    indices = indices.long()
    indices = torch.where(indices < 0, indices + x.shape[axis], indices)
    flat = torch.index_select(x, axis, indices.reshape(-1))
    return flat.reshape([*x.shape[:axis], *indices.shape, *x.shape[axis + 1 :]])


@ops.register("Gather", since=1)
def gather_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    axis = ctx.attr_int("axis", 0)
    out = ctx.call(_gather, ctx.input(0), ctx.input(1), axis)
    elements = ctx.shape_elements(0)
    indices = ctx.constant_input(1)
    if (
        elements is not None
        and indices is not None
        and indices.ndim <= 1
        and ctx.constant_input(0) is None
    ):
        picked = [elements[int(i)] for i in indices.reshape(-1)]
        ctx.set_shape_elements(out, picked)
    return [out]


def _slice(
    x: torch.Tensor,
    starts: list[int],
    ends: list[int],
    axes: list[int] | None,
    steps: list[int] | None,
) -> torch.Tensor:
    rank = x.dim()
    axes = list(range(len(starts))) if axes is None else [a + rank if a < 0 else a for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    index: list[Any] = [slice(None)] * rank
    reversed_axes = []
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        if step > 0:
            index[axis] = slice(start, end, step)
        else:
            reversed_axes.append((axis, slice(start, end, step)))
    out = x[tuple(index)]
    for axis, piece in reversed_axes:
        # torch slicing has no negative step: gather the indices Python's slicing would take.
        begin, stop, stride = piece.indices(out.shape[axis])
        out = out.index_select(axis, torch.arange(begin, stop, stride, device=out.device))
    return out


def _slice_node(ctx: BuildContext, starts: Any, ends: Any, axes: Any, steps: Any) -> Outputs:
    out = ctx.call(_slice, ctx.input(0), starts, ends, axes, steps)
    elements = ctx.shape_elements(0)
    if (
        elements is not None
        and ctx.constant_input(0) is None
        and all(isinstance(v, list) or v is None for v in (starts, ends, axes, steps))
        and len(starts) == 1
        and (steps is None or steps[0] > 0)
    ):
        ctx.set_shape_elements(out, elements[slice(starts[0], ends[0], steps[0] if steps else 1)])
    return [out]


@ops.register("Slice", since=1)
def slice_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _slice_node(
        ctx, ctx.attr_ints("starts"), ctx.attr_ints("ends"), ctx.attr_ints("axes", None), None
    )


@ops.register("Slice", since=10)
def slice_v10(node: ir.Node, ctx: BuildContext) -> Outputs:
    axes = ctx.int_list(3) if ctx.has_input(3) else None
    steps = ctx.int_list(4) if ctx.has_input(4) else None
    return _slice_node(ctx, ctx.int_list(1), ctx.int_list(2), axes, steps)


# -- casts -------------------------------------------------------------------------------------


#: float8 types: (largest finite value, first value that rounds past it, overflow value).
_FLOAT8_LIMITS: dict[torch.dtype, tuple[float, float, float]] = {
    torch.float8_e4m3fn: (448.0, 464.0, math.nan),
    torch.float8_e4m3fnuz: (240.0, 248.0, math.nan),
    torch.float8_e5m2: (57344.0, 61440.0, math.inf),
    torch.float8_e5m2fnuz: (57344.0, 61440.0, math.nan),
}


def _cast(x: torch.Tensor, dtype: torch.dtype, saturate: bool = True) -> torch.Tensor:
    if x.dtype == dtype:
        return x
    limits = _FLOAT8_LIMITS.get(dtype)
    if limits is not None:
        # As onnx's reference (ml_dtypes): saturate clips to the finite range (inf too);
        # otherwise what rounds past the largest value becomes the type's overflow value.
        top, rounds_over, overflow = limits
        x = x.float()
        if saturate:
            x = x.clamp(-top, top)
        else:
            over = x.abs() >= rounds_over
            x = torch.where(over, torch.copysign(torch.tensor(overflow), x), x)
        return x.to(dtype)
    if x.dtype in _FLOAT8_LIMITS:
        x = x.float()
    return x.to(dtype)


_FLOAT4_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
_FLOAT4_TIES = (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0)


def _cast_emulated(x: torch.Tensor, kind: str, saturate: bool, round_mode: str) -> torch.Tensor:
    """Casts to a type torch lacks; the result holds exactly the target type's values."""
    if kind in ("INT4", "UINT4", "INT2", "UINT2"):
        bits = 4 if kind.endswith("4") else 2
        wrapped = torch.remainder(x.to(torch.int64), 1 << bits)  # two's complement wrap
        if kind.startswith("U"):
            return wrapped.to(torch.uint8)
        signed = torch.where(wrapped >= 1 << (bits - 1), wrapped - (1 << bits), wrapped)
        return signed.to(torch.int8)
    x = x.to(torch.float32)
    if kind == "FLOAT4E2M1":
        magnitude = x.abs()
        ties = torch.tensor(_FLOAT4_TIES)
        index = torch.bucketize(magnitude, ties)  # a tie goes down ...
        odd_ties = (magnitude == 0.75) | (magnitude == 1.75) | (magnitude == 3.5)
        index = torch.where(odd_ties, index + 1, index)  # ... unless down is odd
        value = torch.tensor(_FLOAT4_GRID)[index.clamp(max=7)]
        signed = torch.where(torch.signbit(x), -value, value)
        return torch.where(torch.isnan(x), torch.tensor(-0.0), signed)
    # FLOAT8E8M0: unsigned powers of two 2^-127 .. 2^127
    log = torch.log2(x.abs().clamp(min=2.0**-127))
    if round_mode == "down":
        exponent = torch.floor(log)
    elif round_mode == "nearest":
        low = torch.floor(log)
        exponent = torch.where(x.abs() - 2.0**low >= 2.0 ** (low + 1) - x.abs(), low + 1, low)
    else:
        exponent = torch.ceil(log)
    too_big = exponent > 127
    exponent = exponent.clamp(-127, 127)
    value = torch.pow(2.0, exponent.double()).float()
    overflow = torch.tensor(2.0**127 if saturate else math.nan)
    value = torch.where(too_big | torch.isinf(x), overflow, value)
    return torch.where(torch.isnan(x), torch.tensor(math.nan), value)


def _cast_node(ctx: BuildContext, saturate: bool) -> Outputs:
    target = ir.DataType(ctx.attr_int("to"))
    if target in EMULATED:
        round_mode = ctx.attr_str("round_mode", "up")
        return [ctx.call(_cast_emulated, ctx.input(0), target.name, saturate, round_mode)]
    dtype = to_torch_dtype(target)
    out = ctx.call(_cast, ctx.input(0), dtype, saturate)
    elements = ctx.shape_elements(0)
    if elements is not None and ctx.constant_input(0) is None and not dtype.is_floating_point:
        ctx.set_shape_elements(out, elements)
    return [out]


@ops.register("Cast", since=6)
def cast_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _cast_node(ctx, saturate=True)


@ops.register("Cast", since=19)
def cast_v19(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _cast_node(ctx, saturate=bool(ctx.attr_int("saturate", 1)))


def _cast_like(x: torch.Tensor, like: torch.Tensor, saturate: bool) -> torch.Tensor:
    return _cast(x, like.dtype, saturate)


def _cast_like_node(ctx: BuildContext, saturate: bool) -> Outputs:
    like = ctx.node.inputs[1]
    target = like.dtype if like is not None else None
    if target is not None and target in EMULATED:
        round_mode = ctx.attr_str("round_mode", "up")
        return [ctx.call(_cast_emulated, ctx.input(0), target.name, saturate, round_mode)]
    return [ctx.call(_cast_like, ctx.input(0), ctx.input(1), saturate)]


@ops.register("CastLike", since=15)
def cast_like_v15(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _cast_like_node(ctx, True)


@ops.register("CastLike", since=19)
def cast_like_v19(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _cast_like_node(ctx, bool(ctx.attr_int("saturate", 1)))


__all__ = ["normalize_axis"]
