"""Reductions (Reduce*), ArgMax/ArgMin, CumSum/CumProd and TopK.

ONNX reductions differ from torch's in three corners that the run-time helper ``_reduce`` covers:
an empty axes list with ``noop_with_empty_axes`` reduces nothing (torch would reduce everything),
reducing an empty set yields the reduction's identity (torch's ``amax`` raises), and integer
inputs keep their dtype (``ReduceMean`` truncates, ``ReduceL2`` takes an integer square root).
The unsigned types that torch's CPU kernels lack (uint16/32/64) are computed in int64.
"""

from __future__ import annotations

from typing import Any

from unframe.backends.pytorch.ops._common import BuildContext, Outputs, fx, ir, ops, torch

_UNSIGNED_WIDE = (torch.uint16, torch.uint32, torch.uint64)


def _widen(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.int64) if x.dtype in _UNSIGNED_WIDE else x


# -- Reduce* -----------------------------------------------------------------------------------


def _lowest(dtype: torch.dtype) -> float | int | bool:
    if dtype == torch.bool:
        return False
    if dtype.is_floating_point:
        return float("-inf")
    return int(torch.iinfo(dtype).min)


def _highest(dtype: torch.dtype) -> float | int | bool:
    if dtype == torch.bool:
        return True
    if dtype.is_floating_point:
        return float("inf")
    return int(torch.iinfo(dtype).max)


def _reduce(x: torch.Tensor, axes: list[int] | None, keepdims: int, kind: str) -> torch.Tensor:
    """ONNX ``Reduce<kind>`` over ``axes`` (None: every axis; []: none, as noop_with_empty_axes)."""
    rank = x.dim()
    dims = list(range(rank)) if axes is None else sorted({a + rank if a < 0 else a for a in axes})
    dtype = x.dtype
    work = _widen(x)
    if kind in ("sum_square", "l2"):
        work = work * work
    elif kind == "l1":
        work = work.abs()
    elif kind in ("log_sum", "log_sum_exp", "mean") and not work.is_floating_point():
        work = work.double()
    keep = bool(keepdims)
    if dims:
        empty = any(x.shape[d] == 0 for d in dims)
        if kind in ("max", "min") and empty:
            shape = [1 if d in dims else s for d, s in enumerate(x.shape)]
            if not keep:
                shape = [s for d, s in enumerate(shape) if d not in dims]
            fill = _lowest(dtype) if kind == "max" else _highest(dtype)
            return torch.full(shape, fill, dtype=dtype, device=x.device)
        if kind == "max":
            work = torch.amax(work, dims, keepdim=keep)
        elif kind == "min":
            work = torch.amin(work, dims, keepdim=keep)
        elif kind == "prod":
            for d in reversed(dims):
                work = torch.prod(work, d, keepdim=True)
            if not keep:
                work = work.squeeze(dims)
        elif kind == "log_sum_exp":
            work = torch.logsumexp(work, dims, keepdim=keep)
        elif kind == "mean" and not dtype.is_floating_point and not dtype.is_complex:
            count = 1
            for d in dims:
                count = count * x.shape[d]
            work = torch.div(torch.sum(_widen(x), dims, keepdim=keep), count, rounding_mode="trunc")
        elif kind == "mean":
            work = torch.mean(work, dims, keepdim=keep)
        else:
            work = torch.sum(work, dims, keepdim=keep)
    if kind == "l2":
        work = work.sqrt() if work.is_floating_point() else work.double().sqrt()
    elif kind == "log_sum":
        work = work.log()
    return work.to(dtype)


_REDUCTIONS = {
    "ReduceSum": "sum",
    "ReduceMean": "mean",
    "ReduceMax": "max",
    "ReduceMin": "min",
    "ReduceProd": "prod",
    "ReduceL1": "l1",
    "ReduceL2": "l2",
    "ReduceLogSum": "log_sum",
    "ReduceLogSumExp": "log_sum_exp",
    "ReduceSumSquare": "sum_square",
}


def _reduce_attr_axes(node: ir.Node, ctx: BuildContext) -> Outputs:
    """Before the axes input: ``axes`` attribute, absent or empty meaning every axis."""
    axes = ctx.attr_ints("axes", None) or None
    keepdims = ctx.attr_int("keepdims", 1)
    return [ctx.call(_reduce, ctx.input(0), axes, keepdims, _REDUCTIONS[node.op_type])]


def _reduce_input_axes(node: ir.Node, ctx: BuildContext) -> Outputs:
    """With the axes input: an absent/empty input is every axis, or none under noop."""
    keepdims = ctx.attr_int("keepdims", 1)
    noop = ctx.attr_int("noop_with_empty_axes", 0)
    kind = _REDUCTIONS[node.op_type]
    axes: Any = None
    if ctx.has_input(1):
        shape = ctx.input_shape(1)
        if ctx.constant_input(1) is not None or shape is None or shape != (0,):
            axes = ctx.int_list(1)
        if isinstance(axes, list) and not axes:
            axes = None
    if axes is None:
        return [ctx.call(_reduce, ctx.input(0), [] if noop else None, keepdims, kind)]
    if isinstance(axes, list):
        return [ctx.call(_reduce, ctx.input(0), axes, keepdims, kind)]
    return [ctx.call(_reduce_run_time_axes, ctx.input(0), axes, keepdims, noop, kind)]


def _reduce_run_time_axes(
    x: torch.Tensor, axes: list[int], keepdims: int, noop: int, kind: str
) -> torch.Tensor:
    return _reduce(x, axes if axes or noop else None, keepdims, kind)


for _op in _REDUCTIONS:
    ops.register(_op, since=1)(_reduce_attr_axes)
    ops.register(_op, since=13 if _op == "ReduceSum" else 18)(_reduce_input_axes)


# -- ArgMax / ArgMin ---------------------------------------------------------------------------


def _arg_extreme(
    x: torch.Tensor, axis: int, keepdims: int, select_last: int, largest: bool
) -> torch.Tensor:
    axis = axis + x.dim() if axis < 0 else axis
    x = _widen(x)
    if x.dtype == torch.bool:
        x = x.to(torch.uint8)
    function = torch.argmax if largest else torch.argmin
    if not select_last:
        return function(x, axis, keepdim=bool(keepdims))
    flipped = function(x.flip(axis), axis, keepdim=bool(keepdims))
    return x.shape[axis] - 1 - flipped


def _arg(ctx: BuildContext, largest: bool, select_last: int) -> Outputs:
    axis = ctx.attr_int("axis", 0)
    keepdims = ctx.attr_int("keepdims", 1)
    return [ctx.call(_arg_extreme, ctx.input(0), axis, keepdims, select_last, largest)]


@ops.register("ArgMax", since=1)
def arg_max_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _arg(ctx, True, 0)


@ops.register("ArgMax", since=12)
def arg_max_v12(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _arg(ctx, True, ctx.attr_int("select_last_index", 0))


@ops.register("ArgMin", since=1)
def arg_min_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _arg(ctx, False, 0)


@ops.register("ArgMin", since=12)
def arg_min_v12(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _arg(ctx, False, ctx.attr_int("select_last_index", 0))


# -- CumSum / CumProd --------------------------------------------------------------------------


def _cumulative(
    x: torch.Tensor, axis: Any, exclusive: int, reverse: int, product: bool
) -> torch.Tensor:
    if isinstance(axis, torch.Tensor):
        axis = int(axis.reshape(-1)[0].item())
    elif isinstance(axis, list):
        axis = int(axis[0])
    axis = axis + x.dim() if axis < 0 else axis
    dtype = x.dtype
    work = _widen(x)
    if reverse:
        work = work.flip(axis)
    out = torch.cumprod(work, axis) if product else torch.cumsum(work, axis)
    if exclusive:
        # Shift by one along the axis and put the identity in front.
        shape = [1] * x.dim()
        shape[axis] = x.shape[axis]
        first = torch.arange(x.shape[axis], device=x.device).reshape(shape) == 0
        identity = torch.ones_like(out) if product else torch.zeros_like(out)
        out = torch.where(first, identity, torch.roll(out, 1, axis))
    if reverse:
        out = out.flip(axis)
    return out.to(dtype)


def _cumulative_node(ctx: BuildContext, product: bool) -> Outputs:
    axis = ctx.int_list(1)
    exclusive = ctx.attr_int("exclusive", 0)
    reverse = ctx.attr_int("reverse", 0)
    return [ctx.call(_cumulative, ctx.input(0), axis, exclusive, reverse, product)]


@ops.register("CumSum", since=11)
def cum_sum_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _cumulative_node(ctx, False)


@ops.register("CumProd", since=26)
def cum_prod_v26(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _cumulative_node(ctx, True)


# -- TopK --------------------------------------------------------------------------------------


def _top_k(
    x: torch.Tensor, k: int | torch.Tensor, axis: int, largest: int
) -> tuple[torch.Tensor, torch.Tensor]:
    axis = axis + x.dim() if axis < 0 else axis
    count: Any = k
    if isinstance(k, torch.Tensor):
        count = k.reshape(-1)[0].item()  # no int(): that would specialize an unbacked size
        # A run-time k is data-dependent under export: bound it so that narrow() can trace.
        torch._check(count >= 0)
        torch._check(count <= x.shape[axis])
    # A stable sort keeps equal values in index order, which ONNX requires (torch.topk does not);
    # ``sorted=0`` allows any order, so sorted output serves it too.
    values, indices = torch.sort(_widen(x), dim=axis, descending=bool(largest), stable=True)
    return values.narrow(axis, 0, count).to(x.dtype), indices.narrow(axis, 0, count)


def _top_k_node(ctx: BuildContext, k: int | None, largest: int) -> Outputs:
    axis = ctx.attr_int("axis", -1)
    if k is None:
        array = ctx.constant_input(1)
        k_arg: int | fx.Node = ctx.input(1) if array is None else int(array.reshape(-1)[0])
    else:
        k_arg = k
    pair = ctx.call(_top_k, ctx.input(0), k_arg, axis, largest)
    return ctx.unpack(pair, 2)


@ops.register("TopK", since=1)
def top_k_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _top_k_node(ctx, ctx.attr_int("k"), 1)


@ops.register("TopK", since=10)
def top_k_v10(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _top_k_node(ctx, None, 1)


@ops.register("TopK", since=11)
def top_k_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _top_k_node(ctx, None, ctx.attr_int("largest", 1))
