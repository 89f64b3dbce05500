"""MIL control flow: cond as ONNX's If, each block an ONNX subgraph."""

from __future__ import annotations

from typing import Any

import onnx_ir as ir

from unframe.backends.coreml.native.reading import numpy_dtype
from unframe.frontends.coreml.context import MilContext
from unframe.frontends.coreml.registry import IOS15, MIL_DOMAIN, ops


def _block_graph(op: Any, ctx: MilContext, index: int, name: str) -> ir.Graph:
    """Block ``index`` of ``op`` as a subgraph (no inputs: it reads the outer values by name)."""
    block = op.blocks[index]
    outer_nodes, current = ctx.nodes, (ctx.op, ctx.op_name, ctx.op_type)
    ctx.nodes = []
    try:
        for inner in block.operations:
            ctx.convert_op(inner)
        ctx.op, ctx.op_name, ctx.op_type = current
        outputs = []
        for position, var in enumerate(block.outputs):
            # An identity per output: a block may yield an outer value, a subgraph output must
            # be its own, typed as the var.
            value = ctx.identity(ctx.var_value(var), ctx.unique(f"{name}_{position}"))
            dtype = numpy_dtype(var.dtype)
            if dtype is not None:
                value.type = ir.TensorType(ir.DataType.from_numpy(dtype))
            outputs.append(value)
        return ir.Graph([], outputs, nodes=ctx.nodes, name=name)
    finally:
        ctx.nodes = outer_nodes
        ctx.op, ctx.op_name, ctx.op_type = current


@ops.register("cond", since=IOS15, domain=MIL_DOMAIN)
def cond(op: Any, ctx: MilContext) -> list[ir.Value]:
    then_branch = _block_graph(op, ctx, 0, f"{op.name}_then")
    else_branch = _block_graph(op, ctx, 1, f"{op.name}_else")
    attrs = {"then_branch": then_branch, "else_branch": else_branch}
    return ctx.node("If", [ctx.value("pred")], attrs, num_outputs=len(op.outputs))
