"""Control flow: If as MIL's cond (both branches built as blocks, their outputs the cond's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.registry import ops


@ops.register("If", since=1)
def if_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    branches = []
    for key in ("then_branch", "else_branch"):
        attr = node.attributes.get(key)
        graph = attr.value if attr is not None else None
        if not isinstance(graph, ir.Graph):
            raise ctx.error(f"{key} is not a graph")
        for value in graph.outputs:
            if value.type is not None and not isinstance(value.type, ir.TensorType):
                raise ctx.error(f"a {value.type} branch output: Core ML's cond yields tensors")
        branches.append(graph)
    mb = ctx.mb
    pred = ctx.input(0)
    if ctx.input_rank(0):
        pred = mb.squeeze(x=pred)  # ONNX's condition holds one element; MIL's is a scalar
    count = len(node.outputs)

    def build(graph: ir.Graph) -> Any:
        def branch() -> tuple[Any, ...]:
            # Each output an identity inside the block: a branch may yield an outer value.
            return tuple(mb.identity(x=var) for var in ctx.convert_subgraph(graph))

        return branch

    with ctx.in_subgraph():
        result = mb.cond(pred=pred, _true_fn=build(branches[0]), _false_fn=build(branches[1]))
    return list(result) if count > 1 else [result]
