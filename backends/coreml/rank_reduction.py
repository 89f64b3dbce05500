"""A rank-6 or wider Reshape -> Transpose -> Reshape, rewritten to rank 5 or less where the
transpose allows: Core ML holds tensors up to rank 5, and DepthToSpace/SpaceToDepth spelled out
(their ONNX function bodies) reshape to rank 6.

Axes of size 1 move nowhere that matters, and input axes that stay next to each other, in order,
through the transpose move as one: merging them leaves the elements' order unchanged, so the
last Reshape reads the same data from the narrower tensor.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

#: Core ML's largest tensor rank.
MAX_RANK = 5


def _static(value: ir.Value) -> list[int] | None:
    shape = value.shape
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return [int(d) for d in shape]  # type: ignore[arg-type]


def merged_transpose(dims: list[int], perm: list[int]) -> tuple[list[int], list[int]] | None:
    """The narrowest (input dims, perm) moving the elements as ``perm`` moves ``dims``' axes;
    None where nothing merges."""
    kept = [axis for axis in perm if dims[axis] != 1]
    if not kept:
        return None
    following = {a: b for a, b in zip(sorted(kept), sorted(kept)[1:], strict=False)}
    groups = [[kept[0]]]
    for axis in kept[1:]:
        if following.get(groups[-1][-1]) == axis:
            groups[-1].append(axis)
        else:
            groups.append([axis])
    by_input = sorted(groups, key=lambda group: group[0])
    merged_dims = [math.prod(dims[a] for a in group) for group in by_input]
    merged_perm = [by_input.index(group) for group in groups]
    return merged_dims, merged_perm


class NarrowWideTransposesPass(ir.passes.InPlacePass):
    """Narrows every Reshape -> Transpose -> Reshape(s) whose middle is wider than rank 5."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        for node in list(model.graph):
            modified |= self._narrow(model.graph, node)
        return ir.passes.PassResult(model, modified)

    def _narrow(self, graph: ir.Graph, node: ir.Node) -> bool:
        if node.op_type != "Transpose" or node.domain not in ("", "ai.onnx"):
            return False
        wide, narrow_out = node.inputs[0], node.outputs[0]
        reshape = wide.producer() if wide is not None else None
        if wide is None or reshape is None or reshape.op_type != "Reshape":
            return False
        dims = _static(wide)
        if dims is None or len(dims) <= MAX_RANK or 0 in dims:
            return False
        if wide.is_graph_output() or len(wide.uses()) != 1 or narrow_out.is_graph_output():
            return False
        if not all(use.node.op_type == "Reshape" and use.idx == 0 for use in narrow_out.uses()):
            return False
        perm_attr = node.attributes.get("perm")
        perm = list(perm_attr.as_ints()) if perm_attr is not None else list(range(len(dims)))[::-1]
        found = merged_transpose(dims, perm)
        if found is None or len(found[0]) > MAX_RANK:
            return False
        merged_dims, merged_perm = found
        shape = ir.Value(
            name=f"{wide.name}_narrowed_shape",
            const_value=ir.tensor(np.asarray(merged_dims, np.int64)),
        )
        shape.shape = ir.Shape([len(merged_dims)])
        shape.dtype = ir.DataType.INT64
        graph.register_initializer(shape)
        reshape.replace_input_with(1, shape)
        wide.shape = ir.Shape(merged_dims)
        node.attributes["perm"] = ir.AttrInt64s("perm", merged_perm)
        narrow_out.shape = ir.Shape([merged_dims[axis] for axis in merged_perm])
        return True
