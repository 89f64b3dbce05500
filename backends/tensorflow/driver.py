"""The driver: traces an IR graph, node by node, into a ``tf.function`` and saves a SavedModel.

The function's input signature is the ONNX graph's inputs (dynamic dims as ``None``), in graph
order, keyed by their names (made valid TF names); it returns a dict keyed by the output names.
Every node's TF ops are made under a name scope from the ONNX node's name, so the SavedModel's op
names say which ONNX node made them. Float initializers become ``tf.Variable``s the module owns
(``weights="constants"`` embeds them in the graph instead).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.tensorflow.context import (
    FRAMEWORK,
    ExportContext,
    ExportState,
    Physical,
)
from unframe.backends.tensorflow.native import (
    INPUT_NAMES_ATTR,
    OUTPUT_NAMES_ATTR,
    SERVING_SIGNATURE,
    import_tensorflow,
    signature_key,
    tf_dtype,
)
from unframe.backends.tensorflow.registry import Converter, ops
from unframe.shared_ir.conversion import node_opset, onnx_loop
from unframe.shared_ir.errors import UnsupportedOp
from unframe.shared_ir.folding import FoldConstantsPass
from unframe.shared_ir.op_registry import OpRegistry
from unframe.shared_ir.passes import infer_shapes


@dataclass
class TFExport:
    """A built model: the module to save, its signature function and what the layout pass did."""

    module: Any
    function: Any
    input_keys: list[str]
    output_keys: list[str]
    input_names: list[str]
    output_names: list[str]
    #: Transposes added at the boundaries of channels-last regions (inputs and outputs included).
    transposes: int


def load_converters() -> None:
    """Imports every op module of ``backends/tensorflow/ops`` (each registers its converters)."""
    importlib.import_module("unframe.backends.tensorflow.ops")


def export_registry() -> OpRegistry[Converter]:
    load_converters()
    return ops


def converter_for(node: ir.Node, imports: dict[str, int]) -> Converter | None:
    opset = node_opset(node.domain, imports)
    return None if opset is None else ops.lookup(node.op_type, opset, node.domain)


def unsupported(model: ir.Model) -> list[UnsupportedOp]:
    """Every node without a converter, found before anything is built."""
    load_converters()
    return ops.unsupported_nodes(model)


def to_tensorflow(model: ir.Model, *, weights: str = "variables") -> TFExport:
    """Builds ``model`` as a ``tf.Module`` with one traced signature function.

    Raises ``UnsupportedOpsError`` listing every node without a converter before building, and
    after tracing every node a converter refused. ``model`` is changed in place (shapes inferred,
    constants folded by the shared :class:`~unframe.shared_ir.folding.FoldConstantsPass`).
    """
    tf = import_tensorflow()
    load_converters()
    imports = dict(model.opset_imports)
    loop = onnx_loop(FRAMEWORK, "export", imports)
    loop.check_supported(list(model.graph), lambda node: converter_for(node, imports) is not None)
    infer_shapes(model)
    FoldConstantsPass()(model)
    graph = model.graph
    initializers = set(graph.initializers.values())
    inputs = [value for value in graph.inputs if value not in initializers]
    taken: set[str] = set()
    input_keys = [signature_key(v.name or "", taken, f"input_{i}") for i, v in enumerate(inputs)]
    output_keys = [
        signature_key(v.name or "", taken, f"output_{i}") for i, v in enumerate(graph.outputs)
    ]
    specs = [
        tf.TensorSpec(_signature_shape(value), tf_dtype(value.dtype, f"input {value.name!r}"), key)
        for value, key in zip(inputs, input_keys, strict=True)
    ]
    state = ExportState(tf, weights)
    nodes = list(graph)

    def body(*args: Any) -> dict[str, Any]:
        state.start_trace()
        for value, arg in zip(inputs, args, strict=True):
            state.env[value] = Physical(arg)

        def convert(node: ir.Node) -> None:
            opset = node_opset(node.domain, imports) or 0
            ctx = ExportContext(state, node, opset)
            converter = converter_for(node, imports)
            assert converter is not None  # check_supported refused the others
            with tf.name_scope(ctx.name):
                results = list(converter(node, ctx))
            for value, result in zip(node.outputs, results, strict=False):
                if result is not None:
                    state.env[value] = result if isinstance(result, Physical) else Physical(result)

        loop.convert(nodes, convert)
        return {
            key: tf.identity(_logical(state, value), name=key)
            for key, value in zip(output_keys, graph.outputs, strict=True)
        }

    function = tf.function(body, input_signature=specs, autograph=False)
    concrete = function.get_concrete_function()
    module = tf.Module()
    module.weights = state.variables
    setattr(
        module,
        INPUT_NAMES_ATTR,
        tf.Variable([v.name or "" for v in inputs], dtype=tf.string, trainable=False),
    )
    setattr(
        module,
        OUTPUT_NAMES_ATTR,
        tf.Variable([v.name or "" for v in graph.outputs], dtype=tf.string, trainable=False),
    )
    return TFExport(
        module=module,
        function=concrete,
        input_keys=input_keys,
        output_keys=output_keys,
        input_names=[v.name or "" for v in inputs],
        output_names=[v.name or "" for v in graph.outputs],
        transposes=state.transposes,
    )


def save_saved_model(model: ir.Model, path: Path, *, weights: str = "variables") -> TFExport:
    """Builds ``model`` and writes it as a SavedModel directory at ``path``."""
    tf = import_tensorflow()
    built = to_tensorflow(model, weights=weights)
    tf.saved_model.save(built.module, str(path), signatures={SERVING_SIGNATURE: built.function})
    return built


def run_built(built: TFExport, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Calls a built (unsaved) model's signature function; outputs keyed by ONNX names."""
    from unframe.shared_ir.inputs import align_feeds

    tf = import_tensorflow()
    feeds = align_feeds(built.input_names, inputs)
    specs = built.function.structured_input_signature[0]
    tensors = [
        tf.convert_to_tensor(np.asarray(feeds[name]), dtype=spec.dtype)
        for name, spec in zip(built.input_names, specs, strict=True)
    ]
    result = built.function(*tensors)
    return {
        name: result[key].numpy()
        for name, key in zip(built.output_names, built.output_keys, strict=True)
    }


def _logical(state: ExportState, value: ir.Value) -> Any:
    held = state.env.get(value)
    if held is None:
        if value.const_value is None:
            raise ValueError(f"graph output {value.name!r} is never produced")
        return state.tf.constant(value.const_value.numpy())
    return state.to_logical(value, held)


def _signature_shape(value: ir.Value) -> list[int | None] | None:
    if value.shape is None:
        return None
    return [dim if isinstance(dim, int) else None for dim in value.shape]
