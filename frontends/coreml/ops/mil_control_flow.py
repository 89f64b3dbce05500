"""MIL control flow: cond as ONNX's If, while_loop as ONNX's Loop, each block an ONNX subgraph."""

from __future__ import annotations

from typing import Any

import numpy as np
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


def _dims(var: Any) -> list[int | None]:
    return [int(d) if isinstance(d, int | np.integer) else None for d in var.shape]


def _convert_block(ctx: MilContext, block: Any) -> list[ir.Value]:
    """Converts ``block``'s ops into ``ctx.nodes``; the values of its outputs."""
    current = (ctx.op, ctx.op_name, ctx.op_type)
    for inner in block.operations:
        ctx.convert_op(inner)
    ctx.op, ctx.op_name, ctx.op_type = current
    return [ctx.var_value(var) for var in block.outputs]


def _bind_block_inputs(ctx: MilContext, block: Any, values: list[ir.Value]) -> None:
    for var, value in zip(block.inputs, values, strict=True):
        ctx.values[var.name] = value


@ops.register("while_loop", since=IOS15, domain=MIL_DOMAIN)
def while_loop(op: Any, ctx: MilContext) -> list[ir.Value]:
    """ONNX's Loop without a trip count: its condition input is the condition block on the
    initial values; its body is the body block, then the condition block on the new values
    (ONNX tests the body's condition output before each next iteration, as MIL tests its block).
    """
    condition, body = op.blocks
    initial = ctx.values_of("loop_vars")
    _bind_block_inputs(ctx, condition, initial)
    (first,) = _convert_block(ctx, condition)
    outer_nodes = ctx.nodes
    ctx.nodes = []
    try:
        iteration = ir.Value(
            name=ctx.unique(f"{op.name}_iteration"), type=ir.TensorType(ir.DataType.INT64),
            shape=ir.Shape([]),
        )  # fmt: skip
        go_in = ir.Value(
            # No shape: the condition block may yield a one-element tensor, not a scalar.
            name=ctx.unique(f"{op.name}_go"), type=ir.TensorType(ir.DataType.BOOL),
        )  # fmt: skip
        carried = []
        for var in body.inputs:
            dtype = numpy_dtype(var.dtype)
            if dtype is None:
                raise ctx.error(f"a loop variable of MIL type {var.dtype}")
            carried.append(
                ir.Value(
                    name=ctx.unique(ctx.source(var.name)),
                    type=ir.TensorType(ir.DataType.from_numpy(dtype)),
                    shape=ir.Shape(_dims(var)),
                )
            )
        _bind_block_inputs(ctx, body, carried)
        updated = _convert_block(ctx, body)
        _bind_block_inputs(ctx, condition, updated)
        (go_out,) = _convert_block(ctx, condition)
        outputs = [
            ctx.identity(value, ctx.unique(f"{op.name}_out_{k}"))
            for k, value in enumerate([go_out, *updated])
        ]
        for value, var in zip(outputs[1:], body.outputs, strict=True):
            dtype = numpy_dtype(var.dtype)
            if dtype is not None:
                value.type = ir.TensorType(ir.DataType.from_numpy(dtype))
        outputs[0].type = ir.TensorType(ir.DataType.BOOL)
        graph = ir.Graph(
            [iteration, go_in, *carried], outputs, nodes=ctx.nodes, name=f"{op.name}_body"
        )
    finally:
        ctx.nodes = outer_nodes
    return ctx.node("Loop", [None, first, *initial], {"body": graph}, num_outputs=len(op.outputs))
