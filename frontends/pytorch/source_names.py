"""Giving a model read from a ``.pt2`` that unframe wrote its ONNX names back.

torch.onnx names the graph's values after the program's own (sanitized) names: ``image_0`` for the
ONNX input ``image:0``, ``encoder_dense_0_W`` for the weight ``encoder/dense:0/W``. The ``.pt2``'s
``unframe.json`` (``backends/pytorch/native/pt2_names.py``) records the original names of the inputs, the
outputs and each ``state_dict`` key; they are put back here, after the export, so that a value can
be matched across ONNX -> ``.pt2`` -> ONNX. Intermediate values (and the nodes yielding them) get
theirs back where the record's fx node name and aten op match the node torch.onnx made, as its
``namespace`` metadata says (``.../add_16: aten.add.Tensor``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import onnx_ir as ir

from unframe.shared_ir.traversal import iter_nodes


def restore_source_names(model: ir.Model, names: Mapping[str, Any]) -> None:
    """Renames ``model``'s inputs, outputs and initializers to the names in ``names``, in place.

    Inputs and outputs are matched by position (only when their counts agree), initializers by
    their ``state_dict`` key. A value of the graph that already holds a wanted name is renamed
    out of the way; an output that is also an input, an initializer or another output gets its
    name through an ``Identity``.
    """
    graph = model.graph
    initializer_values = set(graph.initializers.values())
    inputs = [v for v in graph.inputs if v not in initializer_values]
    wanted: dict[ir.Value, str] = {}
    if len(names.get("inputs", [])) == len(inputs):
        wanted.update(zip(inputs, names["inputs"], strict=True))
    by_key = names.get("initializers", {})
    for key, value in list(graph.initializers.items()):
        if key in by_key and value not in wanted:
            wanted[value] = by_key[key]
    outputs = list(graph.outputs)
    output_names = names.get("outputs", [])
    if len(output_names) == len(outputs):
        for index, (value, name) in enumerate(zip(outputs, output_names, strict=True)):
            if value in wanted or value.is_graph_input() or value in initializer_values:
                graph.outputs[index] = _identity(graph, value)
                value = graph.outputs[index]
            wanted[value] = name
    if len(set(wanted.values())) != len(wanted):
        return  # two values claim one name: a record unframe never writes; keep torch's names
    node_names: dict[ir.Node, str] = {}
    claimed = set(wanted.values())
    for node, value, record in _recorded_values(graph, names.get("values", {})):
        if wanted.get(value) != record["value"]:
            if value in wanted or value.is_graph_input() or record["value"] in claimed:
                continue  # the graph's own names come first
            wanted[value] = record["value"]
            claimed.add(record["value"])
        if record["node"] and len(node.outputs) == 1:
            node_names[node] = record["node"]
    _rename(model, wanted)
    _rename_nodes(model, node_names)


def _recorded_values(
    graph: ir.Graph, records: Mapping[str, Mapping[str, str]]
) -> Iterator[tuple[ir.Node, ir.Value, Mapping[str, str]]]:
    """The node outputs the record names, where the node is the one the record describes."""
    for node in graph:
        namespace = node.metadata_props.get("namespace", "")
        for value in node.outputs:
            record = records.get(value.name or "")
            if record is None:
                continue
            made_from = f"{value.name}: {record['target']}"
            if namespace == made_from or namespace.endswith("/" + made_from):
                yield node, value, record


def _rename_nodes(model: ir.Model, wanted: Mapping[ir.Node, str]) -> None:
    nodes = list(iter_nodes(model.graph))
    taken = {n.name for n in nodes if n.name} | set(wanted.values())
    targets = set(wanted.values())
    fresh = (f"node_renamed_{i}" for i in itertools.count())
    for node in nodes:
        if node not in wanted and node.name in targets:
            node.name = next(name for name in fresh if name not in taken)
    for node, name in wanted.items():
        node.name = name


def _identity(graph: ir.Graph, value: ir.Value) -> ir.Value:
    node = ir.node("Identity", [value])
    graph.append(node)
    return node.outputs[0]


def _rename(model: ir.Model, wanted: Mapping[ir.Value, str]) -> None:
    graph = model.graph
    values: list[ir.Value] = [*graph.inputs, *graph.initializers.values()]
    for node in iter_nodes(graph):
        values.extend(node.outputs)
    taken = {v.name for v in values if v.name}
    taken.update(wanted.values())
    fresh = (f"val_renamed_{i}" for i in itertools.count())
    targets = set(wanted.values())
    # Bystanders holding a wanted name move aside; the renamed values pass through unique
    # temporary names, so that two of them may swap names.
    for value in values:
        if value in wanted or value.name in targets:
            value.name = next(name for name in fresh if name not in taken)
    for value, name in wanted.items():
        value.name = name
