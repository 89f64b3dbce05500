"""Sequences and optionals. A sequence is a Python list of tensors in the graph, an empty
optional is None; SequenceMap runs its body once per element at run time.
"""

from __future__ import annotations

from typing import Any

from unframe.backends.pytorch.ops._common import BuildContext, Outputs, fx, ir, ops, torch


def _construct(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return list(tensors)


def _empty() -> list[torch.Tensor]:
    return []


def _position(
    sequence: list[torch.Tensor], position: torch.Tensor | int | None, default: int
) -> int:
    index = default if position is None else int(position)
    return index + len(sequence) if index < 0 else index


def _at(sequence: list[torch.Tensor], position: torch.Tensor | int) -> torch.Tensor:
    return sequence[_position(sequence, position, 0)]


def _insert(
    sequence: list[torch.Tensor], tensor: torch.Tensor, position: torch.Tensor | int | None
) -> list[torch.Tensor]:
    index = _position(sequence, position, len(sequence))
    return [*sequence[:index], tensor, *sequence[index:]]


def _erase(sequence: list[torch.Tensor], position: torch.Tensor | int | None) -> list[torch.Tensor]:
    index = _position(sequence, position, -1 if sequence else 0)
    return [*sequence[:index], *sequence[index + 1 :]]


def _length(sequence: list[torch.Tensor]) -> torch.Tensor:
    return torch.tensor(len(sequence), dtype=torch.int64)


def _concat(sequence: list[torch.Tensor], axis: int, new_axis: int) -> torch.Tensor:
    if new_axis:
        rank = sequence[0].dim() + 1
        return torch.stack(sequence, dim=axis + rank if axis < 0 else axis)
    return torch.cat(sequence, dim=axis)


def _split(
    x: torch.Tensor, split: torch.Tensor | int | list[int] | None, axis: int, keepdims: int
) -> list[torch.Tensor]:
    if split is None:
        pieces = list(torch.split(x, 1, dim=axis))
        return pieces if keepdims else [p.squeeze(axis) for p in pieces]
    if isinstance(split, int | list):  # known at build time: no data-dependent sizes on export
        return list(torch.split(x, split, dim=axis))
    if split.dim() == 0:
        return list(torch.split(x, int(split), dim=axis))
    return list(torch.split(x, [int(s) for s in split.tolist()], dim=axis))


def _position_input(ctx: BuildContext, index: int) -> fx.Node | int | None:
    """A position input as a python int where it is a constant, so export sees no ``.item()``."""
    array = ctx.constant_input(index)
    return ctx.optional_input(index) if array is None else int(array.reshape(-1)[0])


@ops.register("SequenceConstruct", since=11)
def sequence_construct_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_construct, *(ctx.input(i) for i in range(ctx.num_inputs)))]


@ops.register("SequenceEmpty", since=11)
def sequence_empty_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_empty)]


@ops.register("SequenceAt", since=11)
def sequence_at_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_at, ctx.input(0), _position_input(ctx, 1))]


@ops.register("SequenceInsert", since=11)
def sequence_insert_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_insert, ctx.input(0), ctx.input(1), _position_input(ctx, 2))]


@ops.register("SequenceErase", since=11)
def sequence_erase_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_erase, ctx.input(0), _position_input(ctx, 1))]


@ops.register("SequenceLength", since=11)
def sequence_length_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_length, ctx.input(0))]


@ops.register("ConcatFromSequence", since=11)
def concat_from_sequence_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    axis = ctx.attr_int("axis")
    return [ctx.call(_concat, ctx.input(0), axis, ctx.attr_int("new_axis", 0))]


@ops.register("SplitToSequence", since=11)
def split_to_sequence_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    array = ctx.constant_input(1)
    split: Any = ctx.optional_input(1)
    if array is not None:
        split = int(array) if array.ndim == 0 else [int(s) for s in array.reshape(-1)]
    axis, keepdims = ctx.attr_int("axis", 0), ctx.attr_int("keepdims", 1)
    return [ctx.call(_split, ctx.input(0), split, axis, keepdims)]


def _sequence_map(
    body: Any, num_outputs: int, captured: tuple[Any, ...], *inputs: Any
) -> tuple[list[torch.Tensor], ...]:
    results: tuple[list[torch.Tensor], ...] = tuple([] for _ in range(num_outputs))
    for i in range(len(inputs[0])):
        args = [x[i] if isinstance(x, list) else x for x in inputs]
        for k, value in enumerate(body(*args, *captured)):
            results[k].append(value)
    return results


@ops.register("SequenceMap", since=17)
def sequence_map_v17(node: ir.Node, ctx: BuildContext) -> Outputs:
    body = ctx.subgraph("body")
    out = ctx.call(
        _sequence_map,
        body.module,
        len(node.outputs),
        tuple(body.captured),
        *(ctx.input(i) for i in range(ctx.num_inputs)),
    )
    return ctx.unpack(out, len(node.outputs))


# -- optionals ---------------------------------------------------------------------------------


def _none() -> None:
    return None


def _has_element(value: Any) -> torch.Tensor:
    return torch.tensor(value is not None)


@ops.register("Optional", since=15)
def optional_v15(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.input(0) if ctx.has_input(0) else ctx.call(_none)]


@ops.register("OptionalHasElement", since=15)
def optional_has_element_v15(node: ir.Node, ctx: BuildContext) -> Outputs:
    if not ctx.has_input(0):
        return [ctx.make_constant(False)]
    return [ctx.call(_has_element, ctx.input(0))]


@ops.register("OptionalGetElement", since=15)
def optional_get_element_v15(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.input(0)]
