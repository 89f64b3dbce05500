"""Sequences and optionals inside a graph: Sequence*, SplitToSequence, ConcatFromSequence,
Optional, OptionalHasElement, OptionalGetElement.

A sequence is held as a :class:`TensorSequence`, a Python list of ``tf.Tensor``s whose length is
known when the graph is traced (positions and split sizes are read as constants); an optional
as an :class:`OptionalValue`. Both live between converters only: one that would be a graph
output, leave an If branch or be carried through a Loop is refused (signatures and TF's
control flow hold tensors); a signature input of a sequence or optional type is too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from unframe.backends.tensorflow.context import Physical
from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    ir,
    normalize_axis,
    np,
    ops,
)


class TensorSequence(list[Any]):
    """An ONNX sequence: its tensors in order, the length fixed when the graph is traced."""


@dataclass(frozen=True)
class OptionalValue:
    """An ONNX optional: ``value`` (a tensor or a ``TensorSequence``), or None when empty."""

    value: Any = None


# -- sequences ---------------------------------------------------------------------------------


@ops.register("SequenceEmpty", since=11)
def sequence_empty_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _held(ctx, TensorSequence())


@ops.register("SequenceConstruct", since=11)
def sequence_construct_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _held(ctx, TensorSequence(ctx.input(i) for i in range(len(node.inputs))))


@ops.register("SequenceInsert", since=11)
def sequence_insert_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    items = TensorSequence(_sequence(ctx, 0))
    position = _position(ctx, 2, len(items), default=len(items), end=True)
    items.insert(position, ctx.input(1))
    return _held(ctx, items)


@ops.register("SequenceAt", since=11)
def sequence_at_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    items = _sequence(ctx, 0)
    return [ctx.tf.identity(items[_position(ctx, 1, len(items))])]


@ops.register("SequenceErase", since=11)
def sequence_erase_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    items = TensorSequence(_sequence(ctx, 0))
    del items[_position(ctx, 1, len(items), default=len(items) - 1)]
    return _held(ctx, items)


@ops.register("SequenceLength", since=11)
def sequence_length_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    return [ctx.tf.constant(len(_sequence(ctx, 0)), ctx.tf.int64)]


@ops.register("SplitToSequence", since=11)
def split_to_sequence_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    tensor = ctx.input(0)
    shape = ctx.input_shape(0)
    if shape is None:
        raise ctx.error("the input's rank is not known")
    axis = normalize_axis(int(ctx.attr("axis", 0)), len(shape))
    size = shape[axis]
    split = ctx.constant_input(1) if ctx.has_input(1) else None
    if ctx.has_input(1) and split is None:
        raise ctx.error("the split sizes are computed at run time (the sequence's length would be)")
    if split is not None and split.ndim == 1:
        sizes = [int(s) for s in split]
    else:
        if size is None:
            raise ctx.error(f"axis {axis} has no static size (the sequence's length would not)")
        chunk = 1 if split is None else int(split.reshape(()))
        sizes = [min(chunk, size - start) for start in range(0, size, chunk)]
    pieces = tf.split(tensor, sizes, axis=axis) if sizes else []
    if split is None and not int(ctx.attr("keepdims", 1)):
        pieces = [tf.squeeze(piece, [axis]) for piece in pieces]
    return _held(ctx, TensorSequence(pieces))


@ops.register("ConcatFromSequence", since=11)
def concat_from_sequence_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    items = _sequence(ctx, 0)
    if not items:
        raise ctx.error("the sequence is empty (its element shape is not known)")
    axis = int(ctx.attr("axis"))
    if int(ctx.attr("new_axis", 0)):
        return [tf.stack(items, axis=normalize_axis(axis, items[0].shape.rank + 1))]
    return [tf.concat(items, axis=normalize_axis(axis, items[0].shape.rank))]


# -- optionals ---------------------------------------------------------------------------------


@ops.register("Optional", since=15)
def optional_v15(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _held(ctx, OptionalValue(ctx.input(0) if ctx.has_input(0) else None))


@ops.register("OptionalHasElement", since=15)
def optional_has_element_v15(node: ir.Node, ctx: ExportContext) -> Outputs:
    # Since 18 the input may be missing (empty) or a tensor or sequence (present).
    present = ctx.has_input(0) and _optional(ctx, 0).value is not None
    return [ctx.tf.constant(present)]


@ops.register("OptionalHasElement", since=18)
def optional_has_element_v18(node: ir.Node, ctx: ExportContext) -> Outputs:
    return optional_has_element_v15(node, ctx)


@ops.register("OptionalGetElement", since=15)
def optional_get_element_v15(node: ir.Node, ctx: ExportContext) -> Outputs:
    element = _optional(ctx, 0).value
    if element is None:
        raise ctx.error("the optional is empty (ONNX leaves reading it undefined)")
    if isinstance(element, TensorSequence):
        return _held(ctx, element)
    return [ctx.tf.identity(element)]


@ops.register("OptionalGetElement", since=18)
def optional_get_element_v18(node: ir.Node, ctx: ExportContext) -> Outputs:
    return optional_get_element_v15(node, ctx)


# -- shared ------------------------------------------------------------------------------------


def _sequence(ctx: ExportContext, index: int) -> TensorSequence:
    held = ctx.physical(index).tensor
    if not isinstance(held, TensorSequence):
        raise ctx.error(
            f"input {index} is a sequence made outside the graph's straight-line ops "
            "(a signature input, a Loop's carried value): not converted"
        )
    return held


def _optional(ctx: ExportContext, index: int) -> OptionalValue:
    held = ctx.physical(index).tensor
    if isinstance(held, OptionalValue):
        return held
    value = ctx.node.inputs[index]
    kind = value.type if value is not None else None
    if isinstance(kind, ir.OptionalType):
        kind = kind.elem_type
    if not isinstance(held, TensorSequence) and isinstance(kind, ir.SequenceType):
        # A sequence signature input reaches the graph as one stacked tensor: not its meaning.
        raise ctx.error(f"input {index} is a sequence made outside the graph")
    return OptionalValue(held)


def _held(ctx: ExportContext, held: TensorSequence | OptionalValue) -> Outputs:
    if ctx.node.outputs[0].is_graph_output():
        kind = "sequence" if isinstance(held, TensorSequence) else "optional"
        raise ctx.error(f"a {kind} as a graph output is not converted (signatures hold tensors)")
    return [Physical(held)]


def _position(
    ctx: ExportContext, index: int, length: int, default: int | None = None, *, end: bool = False
) -> int:
    """A constant position in a sequence of ``length`` (negative counts from the end);
    ``end``: the position after the last is one too (an insertion's)."""
    if not ctx.has_input(index):
        if default is None:
            raise ctx.error(f"input {index} (the position) is missing")
        return default
    found = ctx.constant_input(index)
    if found is None:
        raise ctx.error("the position is computed at run time: only constant positions convert")
    position = int(np.asarray(found).reshape(()))
    if not -length <= position < length + int(end):
        raise ctx.error(f"position {position} is outside a sequence of {length}")
    return position + length if position < 0 else position
