"""Basic binary arithmetic (Add, Sub, Mul, Div) and matrix products (MatMul, Gemm).

Integer ``Div`` truncates toward zero, as onnxruntime does. Arithmetic on small shape vectors
(``Shape`` results) is also done element-wise on symbolic sizes so that it stays dynamic.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from unframe.backends.pytorch.ops._common import BuildContext, Outputs, fx, ir, ops, torch

_UNSIGNED_WIDE = (torch.uint16, torch.uint32, torch.uint64)


def widened(function: Callable[..., torch.Tensor], *tensors: torch.Tensor) -> torch.Tensor:
    """``function(*tensors)``, computed in int64 for the unsigned types torch's CPU kernels lack.

    Call it from a module-level helper (fx cannot print every torch builtin as an argument).
    """
    dtype = tensors[0].dtype
    if dtype in _UNSIGNED_WIDE:
        return function(*(t.to(torch.int64) for t in tensors)).to(dtype)
    return function(*tensors)


def _add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return widened(torch.add, a, b)


def _sub(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return widened(torch.sub, a, b)


def _mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return widened(torch.mul, a, b)


def _div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.is_floating_point() or a.is_complex():
        return torch.div(a, b)
    if a.dtype in _UNSIGNED_WIDE:
        return _div(a.to(torch.int64), b.to(torch.int64)).to(a.dtype)
    return torch.div(a, b, rounding_mode="trunc")


def _binary(
    ctx: BuildContext,
    function: Callable[..., Any],
    symbolic: Callable[..., Any],
    wide: Callable[..., Any],
) -> Outputs:
    a, b = ctx.input(0), ctx.input(1)
    dtype = ctx.input_dtype(0)
    out = ctx.call(wide if dtype in _UNSIGNED_WIDE else function, a, b)
    _propagate_elements(ctx, out, symbolic)
    return [out]


def _propagate_elements(ctx: BuildContext, out: fx.Node, symbolic: Callable[..., Any]) -> None:
    left, right = ctx.shape_elements(0), ctx.shape_elements(1)
    if (
        left is None
        or right is None
        or (ctx.constant_input(0) is not None and ctx.constant_input(1) is not None)
    ):
        return
    if ctx.input_rank(0) == 0 and left:
        left = left[:1]
    if ctx.input_rank(1) == 0 and right:
        right = right[:1]
    if len(left) == 1 and len(right) > 1:
        left = left * len(right)
    if len(right) == 1 and len(left) > 1:
        right = right * len(left)
    if len(left) != len(right):
        return
    elements: list[int | fx.Node] = []
    for x, y in zip(left, right, strict=True):
        if isinstance(x, int) and isinstance(y, int):
            elements.append(int(symbolic(x, y)))
        else:
            elements.append(ctx.call(symbolic, x, y))
    ctx.set_shape_elements(out, elements)


@ops.register("Add", since=7)
def add_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _binary(ctx, torch.add, operator.add, _add)


@ops.register("Sub", since=7)
def sub_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _binary(ctx, torch.sub, operator.sub, _sub)


@ops.register("Mul", since=7)
def mul_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _binary(ctx, torch.mul, operator.mul, _mul)


@ops.register("Div", since=7)
def div_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    # Sizes are non-negative, so floor division is truncation for the symbolic path.
    return _binary(ctx, _div, operator.floordiv, _div)


@ops.register("MatMul", since=1)
def matmul_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.matmul, ctx.input(0), ctx.input(1))]


def _gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor | None,
    alpha: float,
    beta: float,
    trans_a: int,
    trans_b: int,
) -> torch.Tensor:
    a = a.t() if trans_a else a
    b = b.t() if trans_b else b
    product = torch.matmul(a, b)
    if alpha != 1.0:
        product = product * alpha
    if c is None or beta == 0.0:
        return product
    return product + (c * beta if beta != 1.0 else c)


@ops.register("Gemm", since=7)
def gemm_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    alpha, beta = ctx.attr_float("alpha", 1.0), ctx.attr_float("beta", 1.0)
    trans_a, trans_b = ctx.attr_int("transA", 0), ctx.attr_int("transB", 0)
    a, b, c = ctx.input(0), ctx.input(1), ctx.optional_input(2)
    float_types = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
    if (
        alpha == 1.0
        and beta == 1.0
        and trans_b
        and not trans_a
        and ctx.input_dtype(0) in float_types
        and (c is None or ctx.input_rank(2) == 1)
    ):
        # The nn.Linear form: one fused kernel, the layout torch modules use.
        return [ctx.call(torch.nn.functional.linear, a, b, c)]
    return [ctx.call(_gemm, a, b, c, alpha, beta, trans_a, trans_b)]
