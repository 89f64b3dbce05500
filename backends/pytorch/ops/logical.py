"""Logical ops (And, Or, Xor, Not), comparisons (Equal, Greater, Less, ...) and Where.

Comparisons return bool. torch's CPU kernels lack ordering on uint16/uint32/uint64 and
selection on uint16/uint32 and float8: those compare on an order-keeping int64 image and select
on a same-width signed view of the bits.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from unframe.backends.pytorch.ops._common import BuildContext, Outputs, fx, ir, ops, torch

_INT64_MIN = -(2**63)
#: Longest vector tracked element-wise (shape vectors are short; tables are not).
_MAX_ELEMENTS = 64
_UNSIGNED_WIDE = (torch.uint16, torch.uint32, torch.uint64)
#: Types ``torch.where`` cannot select on, and the same-width type whose bits it moves instead.
_SELECT_AS = {
    torch.uint16: torch.int16,
    torch.uint32: torch.int32,
    torch.uint64: torch.int64,
    torch.float8_e4m3fn: torch.int8,
    torch.float8_e4m3fnuz: torch.int8,
    torch.float8_e5m2: torch.int8,
    torch.float8_e5m2fnuz: torch.int8,
}


def _ordered(x: torch.Tensor) -> torch.Tensor:
    """An int64 image of an unsigned tensor that keeps its order (uint64: sign bit flipped)."""
    if x.dtype == torch.uint64:
        return torch.bitwise_xor(x.view(torch.int64), _INT64_MIN)
    return x.to(torch.int64)


def _comparable(x: torch.Tensor) -> torch.Tensor:
    if x.dtype in _UNSIGNED_WIDE:
        return _ordered(x)
    if x.dtype in _SELECT_AS:  # float8: exact in float32
        return x.float()
    return x


# -- logical ----------------------------------------------------------------------------------------
@ops.register("And", since=7)
def and_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.logical_and, ctx.input(0), ctx.input(1))]


@ops.register("Or", since=7)
def or_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.logical_or, ctx.input(0), ctx.input(1))]


@ops.register("Xor", since=7)
def xor_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.logical_xor, ctx.input(0), ctx.input(1))]


@ops.register("Not", since=1)
def not_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.logical_not, ctx.input(0))]


# -- comparisons ------------------------------------------------------------------------------------
def _equal(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.eq(_comparable(a), _comparable(b))


def _greater(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.gt(_comparable(a), _comparable(b))


def _greater_equal(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.ge(_comparable(a), _comparable(b))


def _less(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.lt(_comparable(a), _comparable(b))


def _less_equal(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.le(_comparable(a), _comparable(b))


def _compare(
    ctx: BuildContext,
    function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    symbolic: Callable[[Any, Any], Any],
) -> Outputs:
    out = ctx.call(function, ctx.input(0), ctx.input(1))
    _propagate_elements(ctx, out, symbolic)
    return [out]


def _propagate_elements(ctx: BuildContext, out: fx.Node, symbolic: Callable[..., Any]) -> None:
    """Records a comparison of shape vectors element-wise (``Equal(shape, -1)`` before ``Where``).

    The elements of a bool vector are Python bools or fx nodes yielding them, so that a ``Where``
    on a shape stays symbolic under ``torch.export``.
    """
    left, right = ctx.shape_elements(0), ctx.shape_elements(1)
    if left is None or right is None:
        return
    if ctx.constant_input(0) is not None and ctx.constant_input(1) is not None:
        return
    left, right = _broadcast_elements(left, right)
    if left is None or len(left) > _MAX_ELEMENTS:
        return
    elements: list[Any] = []
    for x, y in zip(left, right, strict=True):
        if isinstance(x, int) and isinstance(y, int):
            elements.append(bool(symbolic(x, y)))
        else:
            elements.append(ctx.call(symbolic, x, y))
    ctx.set_shape_elements(out, elements)


def _broadcast_elements(left: list[Any], right: list[Any]) -> tuple[list[Any] | None, list[Any]]:
    if len(left) == 1 and len(right) > 1:
        left = left * len(right)
    if len(right) == 1 and len(left) > 1:
        right = right * len(left)
    return (left, right) if len(left) == len(right) else (None, right)


@ops.register("Equal", since=7)
def equal_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _compare(ctx, _equal, operator.eq)


@ops.register("Greater", since=7)
def greater_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _compare(ctx, _greater, operator.gt)


@ops.register("GreaterOrEqual", since=12)
def greater_or_equal_v12(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _compare(ctx, _greater_equal, operator.ge)


@ops.register("Less", since=7)
def less_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _compare(ctx, _less, operator.lt)


@ops.register("LessOrEqual", since=12)
def less_or_equal_v12(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _compare(ctx, _less_equal, operator.le)


# -- Where ------------------------------------------------------------------------------------------
def _where(condition: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    dtype = x.dtype
    view = _SELECT_AS.get(dtype)
    if view is None:
        return torch.where(condition, x, y)
    return torch.where(condition, x.view(view), y.view(view)).view(dtype)


def _select(condition: Any, x: Any, y: Any) -> Any:
    """``Where`` on one symbolic element: a size stays a size under ``torch.export``."""
    if not isinstance(condition, torch.SymBool):
        return x if condition else y
    # sym_ite takes two values of one type: an int next to a SymInt becomes a SymInt.
    if isinstance(x, torch.SymInt) and not isinstance(y, torch.SymInt):
        y = x * 0 + y
    elif isinstance(y, torch.SymInt) and not isinstance(x, torch.SymInt):
        x = y * 0 + x
    return torch.sym_ite(condition, x, y)


@ops.register("Where", since=9)
def where_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    out = ctx.call(_where, ctx.input(0), ctx.input(1), ctx.input(2))
    condition = _bool_elements(ctx)
    x, y = ctx.shape_elements(1), ctx.shape_elements(2)
    if condition is not None and x is not None and y is not None:
        _propagate_where(ctx, out, condition, x, y)
    return [out]


def _bool_elements(ctx: BuildContext) -> list[Any] | None:
    """The condition of a ``Where`` element-wise: a constant bool vector or a compared shape."""
    array = ctx.constant_input(0)
    if array is not None:
        return [bool(v) for v in array.reshape(-1)] if array.ndim <= 1 else None
    return ctx.shape_elements(0)


def _propagate_where(
    ctx: BuildContext, out: fx.Node, condition: list[Any], x: list[Any], y: list[Any]
) -> None:
    size = max(len(condition), len(x), len(y))
    if size > _MAX_ELEMENTS or any(len(e) not in (1, size) for e in (condition, x, y)):
        return
    condition, x, y = (e * size if len(e) == 1 else e for e in (condition, x, y))
    elements: list[Any] = []
    for c, a, b in zip(condition, x, y, strict=True):
        if isinstance(c, bool):
            elements.append(a if c else b)
        else:
            elements.append(ctx.call(_select, c, a, b))
    ctx.set_shape_elements(out, elements)
