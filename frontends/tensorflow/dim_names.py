"""Names for the dynamic dims of a model tf2onnx wrote (it calls each one ``unk__N``).

tf2onnx gives every unknown dim of every value a fresh ``unk__N``, so nothing says which dims
are one and the same, and the numbers change with the graph. Here:

- an input's dynamic dims are ``batch`` where every graph input has a dynamic leading dim (the
  batch of a Keras model, which its inputs share), else ``<input>_dim<k>``;
- the other values' ``unk__N`` dims are forgotten and ONNX's shape inference runs from those
  inputs: a dim it proves equal to an input's (a MatMul's rows, a Conv's batch) takes that name;
- a constant Reshape's ``-1`` that provably is the input's one named dim gets its name, and
  inference runs again from there (onnx's own inference cannot divide a symbol);
- an output dim still unknown after that is ``<output>_dim<k>``.
"""

from __future__ import annotations

import math
import re

import onnx_ir as ir

from unframe.shared_ir.passes import infer_shapes
from unframe.shared_ir.traversal import all_values

BATCH = "batch"
_RESHAPE_ROUNDS = 3

#: What tf2onnx calls an unknown dim.
_TF2ONNX_UNKNOWN = re.compile(r"unk__\d+")


def name_dynamic_dims(model: ir.Model) -> None:
    """Renames the dynamic dims of ``model`` (in place) by the rules of the module's docstring."""
    graph = model.graph
    initializers = set(graph.initializers.values())
    inputs = [value for value in graph.inputs if value not in initializers]
    shared_batch = bool(inputs) and all(_dynamic_leading_dim(value) for value in inputs)
    for value in inputs:
        if value.shape is None:
            continue
        name = _dim_prefix(value)
        value.shape = ir.Shape(
            [
                dim
                if isinstance(dim, int)
                else (BATCH if axis == 0 and shared_batch else f"{name}_dim{axis}")
                for axis, dim in enumerate(value.shape)
            ]
        )
    input_set = set(inputs)
    if _forget_unknown_dims(graph, input_set):
        infer_shapes(model, data_prop=True)
        # A few rounds at most: each one names the dims of the Reshapes it can prove.
        for _ in range(_RESHAPE_ROUNDS):
            if not _prove_reshape_dims(graph):
                break
            _forget_unknown_dims(graph, input_set)
            infer_shapes(model, data_prop=True)
    for value in graph.outputs:
        if value in input_set or value.shape is None:
            continue
        name = _dim_prefix(value)
        value.shape = ir.Shape(
            [
                f"{name}_dim{axis}" if _is_unknown(dim) else dim
                for axis, dim in enumerate(value.shape)
            ]
        )


def _forget_unknown_dims(graph: ir.Graph, keep: set[ir.Value]) -> bool:
    """Every ``unk__N`` dim (tf2onnx's, or onnx inference's own) of the values not in ``keep``
    made unknown; whether there was one."""
    forgot = False
    for value in all_values(graph):
        if value in keep or value.shape is None:
            continue
        if any(_is_tf2onnx_unknown(dim) for dim in value.shape):
            value.shape = ir.Shape(
                [None if _is_tf2onnx_unknown(dim) else dim for dim in value.shape]
            )
            forgot = True
    return forgot


def _prove_reshape_dims(graph: ir.Graph) -> bool:
    """Names the ``-1`` of a constant Reshape target where it provably equals the input's one
    named dim: every other dim static on both sides with equal products (tf2onnx's Reshape for
    the Transpose of a one-channel image, ``[-1, 1, 28, 28]``). onnx's inference leaves it
    unknown; returns whether a dim was named."""
    named = False
    for node in graph:
        if node.op_type != "Reshape" or len(node.inputs) < 2:
            continue
        data, target_value = node.inputs[0], node.inputs[1]
        result = node.outputs[0]
        if data is None or target_value is None or target_value.const_value is None:
            continue
        if data.shape is None or result.shape is None:
            continue
        target = [int(dim) for dim in target_value.const_value.numpy().reshape(-1).tolist()]
        symbolic = [dim for dim in data.shape if not isinstance(dim, int)]
        if len(symbolic) != 1 or target.count(-1) != 1 or 0 in target:
            continue
        name = symbolic[0].value
        if name is None or _is_tf2onnx_unknown(symbolic[0]) or len(result.shape) != len(target):
            continue
        static_in = math.prod(dim for dim in data.shape if isinstance(dim, int))
        if static_in != math.prod(dim for dim in target if dim != -1):
            continue
        axis = target.index(-1)
        current = result.shape[axis]
        if not isinstance(current, int) and current.value == name:
            continue
        dims: list[int | str | None] = [
            dim if isinstance(dim, int) else dim.value for dim in result.shape
        ]
        dims[axis] = name
        result.shape = ir.Shape(dims)
        named = True
    return named


def _dynamic_leading_dim(value: ir.Value) -> bool:
    return value.shape is not None and len(value.shape) > 0 and not isinstance(value.shape[0], int)


def _is_tf2onnx_unknown(dim: int | ir.SymbolicDim) -> bool:
    return (
        not isinstance(dim, int)
        and dim.value is not None
        and bool(_TF2ONNX_UNKNOWN.fullmatch(dim.value))
    )


def _is_unknown(dim: int | ir.SymbolicDim) -> bool:
    return not isinstance(dim, int) and (dim.value is None or _is_tf2onnx_unknown(dim))


def _dim_prefix(value: ir.Value) -> str:
    """The value's name as the start of a dim name (``:`` and ``/`` are not wanted in one)."""
    return re.sub(r"[^A-Za-z0-9_.]", "_", value.name or "value")
