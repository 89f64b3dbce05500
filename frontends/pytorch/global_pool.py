"""Global average pooling back as ``GlobalAveragePool`` in what torch.onnx exports.

torch.export turns ``adaptive_avg_pool2d(x, 1)`` and our own GlobalAveragePool into a mean over
the spatial axes, which torch.onnx writes as ``ReduceMean``. onnxruntime's ReduceMean rounds
channels holding equal values differently (one ulp), where its GlobalAveragePool does not: after a
Softmax over large logits, that ulp picks different classes (light_squeezenet through ``.pt2`` and
back gave 1/750 and 0 where the source gives 1/1000). A ``ReduceMean`` over exactly the spatial
axes with ``keepdims`` is GlobalAveragePool by definition, so it is written as one.
"""

from __future__ import annotations

import onnx_ir as ir


class GlobalAveragePoolPass(ir.passes.InPlacePass):
    """Replaces ``ReduceMean`` (opset 18+) over all axes from 2 on, kept, by ``GlobalAveragePool``.

    Attributes:
        replaced: how many nodes the last run replaced.
    """

    def __init__(self) -> None:
        super().__init__()
        self.replaced = 0

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        self.replaced = 0
        if model.opset_imports.get("", 0) < 18:  # axes became an input at 18
            return ir.passes.PassResult(model, modified=False)
        for node in list(model.graph):
            if _is_global_mean(node):
                self._replace(model.graph, node)
        return ir.passes.PassResult(model, modified=bool(self.replaced))

    def _replace(self, graph: ir.Graph, node: ir.Node) -> None:
        x, axes = node.inputs
        assert x is not None
        pool = ir.node("GlobalAveragePool", [x], name=node.name, metadata_props=node.metadata_props)
        ir.convenience.replace_nodes_and_values(
            graph, node, [node], [pool], [node.outputs[0]], [pool.outputs[0]]
        )
        if axes is not None and axes.is_initializer() and not axes.uses() and axes.name:
            graph.initializers.pop(axes.name)
        self.replaced += 1


def _is_global_mean(node: ir.Node) -> bool:
    if node.op_type != "ReduceMean" or node.domain not in ("", "ai.onnx") or len(node.inputs) != 2:
        return False
    if node.attributes.get_int("keepdims", 1) != 1:
        return False
    x, axes = node.inputs
    if x is None or axes is None or x.shape is None or axes.const_value is None:
        return False
    rank = len(x.shape)
    if rank < 3:
        return False
    wanted = set(range(2, rank))
    given = [int(axis) + rank if int(axis) < 0 else int(axis) for axis in axes.const_value.numpy()]
    return len(given) == len(wanted) and set(given) == wanted
