"""Drives an export with unframe's one conversion loop: scan, convert in order, raise once."""

from __future__ import annotations

from typing import Any

import onnx_ir as ir

from toyfw.backend.context import FRAMEWORK, Converter, ExportContext
from toyfw.backend.registry import ops
from toyfw.native import DTYPES, OPSET, Document, encode
from unframe.shared_ir.conversion import onnx_loop
from unframe.shared_ir.errors import ConversionError
from unframe.shared_ir.op_registry import OpRegistry, load_op_modules


def export_registry() -> OpRegistry[Converter]:
    """The export registry with every op module (``toyfw.backend.ops.*``) loaded."""
    load_op_modules("toyfw.backend.ops")
    return ops


def export_toy(model: ir.Model) -> Document:
    """``model`` as a toyfw document; nothing is written.

    Raises:
        UnsupportedOpsError: every node without a converter (found before converting), or else
            every node a converter refused, all listed at once.
        InternalError: a converter raised something else (a bug in it), naming the node.
    """
    registry = export_registry()
    opsets = dict(model.opset_imports)
    loop = onnx_loop(FRAMEWORK, "export", opsets)
    nodes = list(model.graph)

    def converter(node: ir.Node) -> Converter | None:
        info = loop.describe(node)
        return (
            None if info.opset is None else registry.lookup(node.op_type, info.opset, info.domain)
        )

    loop.check_supported(nodes, lambda node: converter(node) is not None)
    graph = model.graph
    inputs = [value for value in graph.inputs if value.name not in graph.initializers]
    document = {
        "inputs": [_describe(value) for value in inputs],
        "outputs": [_describe(value) for value in graph.outputs],
    }
    ctx = ExportContext(opsets.get("", OPSET))
    for name, value in graph.initializers.items():
        if value.const_value is None:
            raise ConversionError(f"initializer {name!r} has no data")
        ctx.params[name] = encode(value.const_value.numpy())

    def convert(node: ir.Node) -> None:
        ctx.node = node
        function = converter(node)
        assert function is not None  # checked by the scan above
        function(node, ctx)

    loop.convert(nodes, convert)
    return document | {"params": ctx.params, "layers": ctx.layers}


def _describe(value: ir.Value) -> dict[str, Any]:
    """A graph input's or output's entry: its name, toyfw dtype and shape."""
    dtype = next((name for name, known in DTYPES.items() if known == value.dtype), None)
    if dtype is None:
        raise ConversionError(f"toyfw has no {value.dtype} tensors (graph value {value.name!r})")
    dims = (
        None if value.shape is None else [d if isinstance(d, int) else str(d) for d in value.shape]
    )
    return {"name": value.name, "dtype": dtype, "shape": dims}
