"""The structural check every ``.onnx`` input passes, run on the IR an op-by-op frontend built.

Such a frontend (Caffe2's) writes one node per source op, so its IR is a faithful image of the
input: a node that breaks ONNX's rules there comes from a broken argument or shape in the input,
and would otherwise surface only when the converted model is checked or exported, blamed on the
output. The check sees the graph without its weights: initializers are declared as graph inputs
of their type and shape, so no tensor data is read or copied.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import onnx_ir as ir

from unframe.shared_ir.errors import BadInputError
from unframe.shared_ir.onnx_checks import check_structure


def check_imported(model: ir.Model, path: Path) -> None:
    """Raises ``BadInputError`` naming ``path`` where the imported graph fails the ONNX checks."""
    try:
        light = _proto_without_weights(model)
    except (ValueError, TypeError) as error:  # a value without a type the serializer needs
        _refuse(path, str(error).strip().splitlines()[0] if str(error).strip() else "invalid")
    # First strict inference without the frontend's own shape annotations (an output may lack
    # a type where its node's inputs do not fit), so that it names the node at fault; then
    # everything a written model must pass.
    bare = onnx.ModelProto()
    bare.CopyFrom(light)
    bare.graph.ClearField("value_info")
    for output in bare.graph.output:
        output.ClearField("type")
    try:
        onnx.shape_inference.infer_shapes(bare, check_type=True, strict_mode=True)
    except onnx.shape_inference.InferenceError as error:
        _refuse(path, str(error).strip().splitlines()[0] if str(error).strip() else "invalid")
    try:
        check_structure(light, path)
    except BadInputError as error:
        _refuse(path, error.message.removeprefix("not a valid ONNX model: "))


def _refuse(path: Path, reason: str) -> None:
    raise BadInputError(
        f"the model read from {path} is inconsistent: {reason}",
        path=str(path),
        hint="an argument, a weight's shape or a declared shape in it does not fit its op",
    ) from None


def _proto_without_weights(model: ir.Model) -> onnx.ModelProto:
    graph = model.graph
    declared = {value.name for value in graph.inputs}
    weights = [
        (name, value.const_value)
        for name, value in graph.initializers.items()
        if name not in declared and value.const_value is not None
    ]
    # A view shares the nodes and values: serializing it reads no initializer's data.
    view = ir.GraphView(
        graph.inputs, graph.outputs, nodes=list(graph), initializers=(), name=graph.name,
        opset_imports=dict(graph.opset_imports),
    )  # fmt: skip
    proto = onnx.ModelProto()
    proto.ir_version = model.ir_version
    for domain, version in graph.opset_imports.items():
        proto.opset_import.append(onnx.helper.make_opsetid(domain, version))
    for function in model.functions.values():
        proto.functions.append(ir.serde.serialize_function(function))
    # onnx_ir's GraphView has read-only ``meta`` where its protocol declares it settable.
    ir.serde.serialize_graph_into(proto.graph, view, model_ir_version=model.ir_version)  # type: ignore[arg-type]
    for name, tensor in weights:
        dims = [int(d) for d in tensor.shape.numpy()]
        proto.graph.input.append(onnx.helper.make_tensor_value_info(name, int(tensor.dtype), dims))
    return proto
