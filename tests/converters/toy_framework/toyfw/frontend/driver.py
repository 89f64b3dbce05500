"""Drives an import with unframe's one conversion loop, over toyfw layers instead of ONNX nodes."""

from __future__ import annotations

from typing import Any

import onnx_ir as ir

from toyfw.frontend.context import FRAMEWORK, Converter, ImportContext
from toyfw.frontend.registry import DOMAIN, ops
from toyfw.native import DTYPES, OPSET, Document, Layer, decode
from unframe.shared_ir.conversion import ConversionLoop, NodeInfo
from unframe.shared_ir.errors import BadInputError
from unframe.shared_ir.op_registry import OpRegistry, load_op_modules


def import_registry() -> OpRegistry[Converter]:
    """The import registry with every op module (``toyfw.frontend.ops.*``) loaded."""
    load_op_modules("toyfw.frontend.ops")
    return ops


def import_toy(document: Document, path: str) -> ir.Model:
    """A toyfw document (as ``native.read_toy`` checked it) as an IR model.

    Raises:
        UnsupportedOpsError: every layer of an unknown kind (found before converting), or else
            every layer a converter refused, all listed at once.
        BadInputError: a layer that reads a value nothing wrote, an output never written.
    """
    registry = import_registry()
    layers: list[Layer] = document["layers"]
    loop: ConversionLoop[Layer] = ConversionLoop(
        framework=FRAMEWORK,
        direction="import",
        describe=lambda layer: NodeInfo(layer["name"], layer["kind"]),
        reads=lambda layer: layer["inputs"],
        writes=lambda layer: layer["outputs"],
        path=path,
    )
    loop.check_supported(
        layers, lambda layer: registry.lookup(layer["kind"], 1, DOMAIN) is not None
    )
    ctx = ImportContext(path, {entry["name"]: _value(entry) for entry in document["outputs"]})
    inputs = [_value(entry) for entry in document["inputs"]]
    ctx.values.update((value.name or "", value) for value in inputs)
    for name, entry in document["params"].items():
        ctx.add_initializer(name, decode(entry))

    def convert(layer: Layer) -> None:
        ctx.layer = layer
        converter = registry.lookup(layer["kind"], 1, DOMAIN)
        assert converter is not None  # checked by the scan above
        converter(layer, ctx)

    loop.convert(layers, convert)
    unwritten = [name for name in ctx.declared if name not in ctx.values]
    if unwritten:
        raise BadInputError(f"no layer writes the output(s) {unwritten}", path=path)
    graph = ir.Graph(
        inputs,
        [ctx.values[name] for name in ctx.declared],
        nodes=ctx.nodes,
        initializers=ctx.initializers,
        opset_imports={"": OPSET},
        name="toyfw",
    )
    return ir.Model(graph, ir_version=10, producer_name="toyfw")


def _value(entry: dict[str, Any]) -> ir.Value:
    shape = None if entry["shape"] is None else ir.Shape(entry["shape"])
    return ir.Value(name=entry["name"], type=ir.TensorType(DTYPES[entry["dtype"]]), shape=shape)
