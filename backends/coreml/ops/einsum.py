"""Einsum, as broadcast products and sums: each operand's axes are put in one order of all the
equation's letters (transposed, unit axes added for the letters it lacks), the operands are
multiplied, the letters missing from the output are summed away, and the rest is put in the
output's order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import require_float
from unframe.backends.coreml.registry import ops

#: Core ML holds tensors up to rank 5: the product of all letters must fit.
_MAX_RANK = 5


def _parse(ctx: ExportContext, count: int) -> tuple[list[str], str]:
    equation = str(ctx.attr("equation")).replace(" ", "")
    if "." in equation:
        raise ctx.error(f"equation {equation!r}: ellipses")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != count:
        raise ctx.error(f"equation {equation!r} names {len(terms)} operands, the node has {count}")
    if not arrow:
        # Implicit output: the letters seen once, in alphabetical order.
        letters = "".join(terms)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    for term in [*terms, output]:
        if len(set(term)) != len(term):
            raise ctx.error(f"equation {equation!r}: a letter repeated in one term (a diagonal)")
    return terms, output


@ops.register("Einsum", since=12)
def einsum_v12(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Einsum")
    mb = ctx.mb
    count = len(node.inputs)
    terms, output = _parse(ctx, count)
    order = list(dict.fromkeys(output + "".join(terms)))
    if len(order) > _MAX_RANK:
        raise ctx.error(f"{len(order)} letters: Core ML holds tensors up to rank {_MAX_RANK}")
    product: Any = None
    for index, term in enumerate(terms):
        operand = ctx.input(index)
        present = [letter for letter in order if letter in term]
        perm = [term.index(letter) for letter in present]
        if perm != list(range(len(perm))):
            operand = mb.transpose(x=operand, perm=perm)
        missing = [axis for axis, letter in enumerate(order) if letter not in term]
        if missing:
            operand = mb.expand_dims(x=operand, axes=missing)
        product = operand if product is None else mb.mul(x=product, y=operand)
    summed = [axis for axis, letter in enumerate(order) if letter not in output]
    if summed:
        product = mb.reduce_sum(x=product, axes=summed, keep_dims=False)
    return [product if product is not ctx.input(0) else mb.identity(x=product)]
