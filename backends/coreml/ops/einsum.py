"""Einsum, as broadcast products and sums: each operand's axes are put in one order of all the
equation's letters (transposed, unit axes added for the letters it lacks), the operands are
multiplied, the letters missing from the output are summed away, and the rest is put in the
output's order. An ellipsis is spelled as spare letters; a letter repeated in one operand's term
takes that operand's diagonal first."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import require_float
from unframe.backends.coreml.registry import ops

#: Core ML holds tensors up to rank 5: the product of all letters must fit.
_MAX_RANK = 5


def _parse(ctx: ExportContext, count: int) -> tuple[list[str], str]:
    """The operands' terms and the output's, with each ellipsis spelled as letters the equation
    does not use (right-aligned, as the dims it stands for broadcast)."""
    equation = str(ctx.attr("equation")).replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != count:
        raise ctx.error(f"equation {equation!r} names {len(terms)} operands, the node has {count}")
    spare = [c for c in string.ascii_letters if c not in equation]
    widest = 0
    for index, term in enumerate(terms):
        if "..." in term:
            widths = ctx.input_rank(index) - len(term.replace("...", ""))
            widest = max(widest, widths)
    ellipsis = "".join(spare[:widest])
    for index, term in enumerate(terms):
        if "..." in term:
            width = ctx.input_rank(index) - len(term.replace("...", ""))
            terms[index] = term.replace("...", ellipsis[widest - width :])
    if not arrow:
        # Implicit output: the ellipsis's dims, then the letters seen once, in alphabetical order.
        letters = "".join(terms)
        output = ellipsis + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ellipsis)
        )
    output = output.replace("...", ellipsis)
    if "." in "".join(terms) + output or len(set(output)) != len(output):
        raise ctx.error(f"equation {equation!r}: a malformed ellipsis or a repeated output letter")
    return terms, output


def _diagonal(ctx: ExportContext, operand: Any, term: str) -> tuple[Any, str]:
    """``operand`` with each letter its term repeats reduced to the diagonal of those axes (the
    letter last): the axes moved to the end, flattened, and every ``n + 1``-th entry gathered."""
    mb = ctx.mb
    while len(set(term)) != len(term):
        letter = next(c for c in term if term.count(c) > 1)
        first, second = (i for i, c in enumerate(term) if c == letter)
        shape = list(operand.shape)
        n = shape[first]
        if not isinstance(n, int) or shape[second] != n:
            raise ctx.error(f"a diagonal over {letter!r} of a length unknown before run time")
        kept = [i for i in range(len(term)) if i not in (first, second)]
        operand = mb.transpose(x=operand, perm=[*kept, first, second])
        operand = mb.reshape(x=operand, shape=[*(shape[i] for i in kept), n * n])
        positions = np.arange(n, dtype=np.int32) * (n + 1)
        operand = mb.gather(x=operand, indices=positions, axis=len(kept))
        term = "".join(term[i] for i in kept) + letter
    return operand, term


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
        operand, term = _diagonal(ctx, ctx.input(index), term)
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
