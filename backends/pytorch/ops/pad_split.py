"""Pad (constant, reflect, edge, wrap; any rank) and Split."""

from __future__ import annotations

from typing import Any

from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ir, ops, torch

F = torch.nn.functional


def _pad_indices(size: int, begin: int, end: int, mode: str, device: torch.device) -> torch.Tensor:
    index = torch.arange(-begin, size + end, device=device)
    if mode == "edge":
        return index.clamp(0, size - 1)
    if mode == "wrap":
        return torch.remainder(index, size)
    # reflect (mirror without repeating the edge)
    period = 2 * (size - 1)
    if period == 0:
        return torch.zeros_like(index)
    folded = torch.remainder(index, period)
    return torch.where(folded >= size, period - folded, folded)


def onnx_pad(
    x: torch.Tensor,
    pads: list[int],
    mode: str,
    value: Any,
    axes: list[int] | None,
) -> torch.Tensor:
    """ONNX Pad: ``pads`` is ``[begin per axis..., end per axis...]`` over ``axes`` (all if None)."""
    rank = x.dim()
    axes = list(range(rank)) if axes is None else [a + rank if a < 0 else a for a in axes]
    count = len(axes)
    begins = {axis: int(pads[i]) for i, axis in enumerate(axes)}
    ends = {axis: int(pads[i + count]) for i, axis in enumerate(axes)}
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() else 0
    if mode == "constant":
        flat: list[int] = []
        for axis in reversed(range(rank)):
            flat += [begins.get(axis, 0), ends.get(axis, 0)]
        if x.dtype == torch.bool:
            return F.pad(x.to(torch.uint8), flat, value=float(bool(value))).bool()
        return F.pad(x, flat, value=value if value is not None else 0)
    for axis in axes:
        begin, end = begins[axis], ends[axis]
        if begin < 0 or end < 0:  # negative pads crop
            x = x.narrow(axis, max(-begin, 0), x.shape[axis] - max(-begin, 0) - max(-end, 0))
            begin, end = max(begin, 0), max(end, 0)
        if begin or end:
            x = x.index_select(axis, _pad_indices(x.shape[axis], begin, end, mode, x.device))
    return x


@ops.register("Pad", since=2)
def pad_v2(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [
        ctx.call(
            onnx_pad,
            ctx.input(0),
            ctx.attr_ints("pads"),
            ctx.attr_str("mode", "constant"),
            ctx.attr_float("value", 0.0),
            None,
        )
    ]


def _pad_inputs(ctx: BuildContext, with_axes: bool) -> Outputs:
    value: Any = 0
    if ctx.has_input(2):
        constant = ctx.constant_input(2)
        value = constant.reshape(-1)[0].item() if constant is not None else ctx.input(2)
    axes = ctx.int_list(3) if with_axes and ctx.has_input(3) else None
    return [
        ctx.call(
            onnx_pad,
            ctx.input(0),
            ctx.int_list(1),
            ctx.attr_str("mode", "constant"),
            value,
            axes,
        )
    ]


@ops.register("Pad", since=11)
def pad_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _pad_inputs(ctx, with_axes=False)


@ops.register("Pad", since=18)
def pad_v18(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _pad_inputs(ctx, with_axes=True)


# -- Split -------------------------------------------------------------------------------------


def _split(
    x: torch.Tensor, axis: int, sizes: list[int] | None, parts: int
) -> tuple[torch.Tensor, ...]:
    if sizes is None:
        length = x.shape[axis]
        chunk = -(-length // parts)
        return tuple(torch.split(x, chunk, dim=axis))
    return tuple(torch.split(x, list(sizes), dim=axis))


def _split_node(ctx: BuildContext, sizes: Any) -> Outputs:
    parts = len(ctx.node.outputs)
    out = ctx.call(_split, ctx.input(0), ctx.attr_int("axis", 0), sizes, parts)
    return ctx.unpack(out, parts)


@ops.register("Split", since=2)
def split_v2(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _split_node(ctx, ctx.attr_ints("split", None) or None)


@ops.register("Split", since=13)
def split_v13(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _split_node(ctx, ctx.int_list(1) if ctx.has_input(1) else None)
