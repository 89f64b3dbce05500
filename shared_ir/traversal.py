"""Walking a graph and its subgraphs (If branches, Loop and Scan bodies): one way, onnx_ir's."""

from __future__ import annotations

from collections.abc import Iterator

import onnx_ir as ir


def iter_nodes(graph: ir.Graph | ir.Function) -> Iterator[ir.Node]:
    """Every node of ``graph`` and of the subgraphs in its nodes' attributes, depth first."""
    return iter(ir.traversal.RecursiveGraphIterator(graph))


def all_values(graph: ir.Graph, *, nested: bool = True) -> list[ir.Value]:
    """Every value of ``graph`` (inputs, initializers, node outputs) and, if ``nested``, of its
    subgraphs: each subgraph's inputs and initializers come before its nodes' outputs."""
    values: list[ir.Value] = [*graph.inputs, *graph.initializers.values()]
    nodes = ir.traversal.RecursiveGraphIterator(graph) if nested else iter(graph)
    for node in nodes:  # a node comes before the nodes of its subgraphs
        values.extend(node.outputs)
        if nested:
            for subgraph in _subgraphs(node):
                values.extend([*subgraph.inputs, *subgraph.initializers.values()])
    return values


def _subgraphs(node: ir.Node) -> list[ir.Graph]:
    graphs: list[ir.Graph] = []
    for attr in node.attributes.values():
        if isinstance(attr, ir.Attr) and attr.type == ir.AttributeType.GRAPH:
            graphs.append(attr.as_graph())
        elif isinstance(attr, ir.Attr) and attr.type == ir.AttributeType.GRAPHS:
            graphs.extend(attr.as_graphs())
    return graphs
