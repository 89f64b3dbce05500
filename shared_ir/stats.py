"""What ``unframe inspect`` and round-trip reports show about a model."""

from __future__ import annotations

from collections import Counter
from typing import Any

import onnx_ir as ir

from unframe.shared_ir.traversal import iter_nodes


def _dims(shape: ir.Shape | None) -> list[int | str] | None:
    if shape is None:
        return None
    return [d if isinstance(d, int) else str(d) if d.value is not None else "?" for d in shape]


def value_summary(value: ir.Value) -> dict[str, Any]:
    return {
        "name": value.name,
        "shape": _dims(value.shape),
        "dtype": value.dtype.name.lower() if value.dtype is not None else None,
    }


def model_summary(model: ir.Model) -> dict[str, Any]:
    """Inputs, outputs, op histogram, parameter count and bytes, opsets."""
    graph = model.graph
    parameters = [v.const_value for v in graph.initializers.values() if v.const_value is not None]
    histogram = Counter(
        f"{node.domain}::{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
        for node in iter_nodes(graph)
    )
    return {
        "inputs": [value_summary(v) for v in graph.inputs if v.name not in graph.initializers],
        "outputs": [value_summary(v) for v in graph.outputs],
        "ops": dict(sorted(histogram.items(), key=lambda item: (-item[1], item[0]))),
        "nodes": sum(histogram.values()),
        "parameters": int(sum(t.size for t in parameters)),
        "parameter_bytes": int(sum(t.nbytes for t in parameters)),
        "opset": {domain or "ai.onnx": version for domain, version in model.opset_imports.items()},
        "producer": " ".join(filter(None, [model.producer_name, model.producer_version])),
    }
