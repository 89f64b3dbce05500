"""Which outer-scope values a subgraph reads: what its submodule must be passed as inputs."""

from __future__ import annotations

from collections.abc import Iterable

import onnx_ir as ir


def free_values(graph: ir.Graph) -> set[ir.Value]:
    """Values that ``graph`` (or a nested subgraph) reads but neither defines nor takes as input."""
    defined: set[ir.Value] = set(graph.inputs) | set(graph.initializers.values())
    used: set[ir.Value] = set()
    for node in graph:
        used.update(v for v in node.inputs if v is not None)
        for sub in subgraphs(node):
            used.update(free_values(sub))
        defined.update(node.outputs)
    used.update(graph.outputs)
    return used - defined


def subgraphs(node: ir.Node) -> Iterable[ir.Graph]:
    for attr in node.attributes.values():
        if not isinstance(attr, ir.Attr):
            continue
        if attr.type == ir.AttributeType.GRAPH:
            yield attr.as_graph()
        elif attr.type == ir.AttributeType.GRAPHS:
            yield from attr.as_graphs()
