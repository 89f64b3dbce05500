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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.tensorflow.context import (
    FRAMEWORK,
    ExportState,
    Physical,
    channels_last,
)
from unframe.backends.tensorflow.native import (
    INPUT_NAMES_ATTR,
    NHWC_INPUTS_ATTR,
    NHWC_OUTPUTS_ATTR,
    OUTPUT_NAMES_ATTR,
    SERVING_SIGNATURE,
    import_tensorflow,
    signature_keys,
    tf_dtype,
)
from unframe.backends.tensorflow.registry import Converter, ops
from unframe.shared_ir.conversion import node_opset, onnx_loop
from unframe.shared_ir.errors import UnsupportedOp
from unframe.shared_ir.folding import FoldConstantsPass
from unframe.shared_ir.function_expansion import expand_functions, unsupported_after_expansion
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
    #: Signature keys of the inputs and outputs held NHWC (``layout="nhwc"``), in graph order.
    nhwc_inputs: list[str] = field(default_factory=list)
    nhwc_outputs: list[str] = field(default_factory=list)


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
    """Every node without a converter (nor a function body that converts), found before
    anything is built."""
    load_converters()
    return unsupported_after_expansion(model, ops)


def to_tensorflow(
    model: ir.Model, *, weights: str = "variables", layout: str = "onnx", target: str = "tensorflow"
) -> TFExport:
    """Builds ``model`` as a ``tf.Module`` with one traced signature function.

    ``layout="nhwc"`` makes the signature's 4-D float inputs whose first use runs channels-last
    (a Conv or pool, through ops that follow the layout) NHWC, and returns 4-D outputs held
    channels-last as they are: the model then takes and gives images as a Keras model does,
    with no Transpose at those boundaries. Which ones is recorded in the module (read by
    ``run_saved_model`` and the frontend). An input whose first user is a Transpose (a model
    that already takes NHWC, as Keras models do) and non-image inputs keep ONNX's layout.

    Raises ``UnsupportedOpsError`` listing every node without a converter before building, and
    after tracing every node a converter refused. ``model`` is changed in place (shapes inferred,
    constants folded by the shared :class:`~unframe.shared_ir.folding.FoldConstantsPass`).
    ``target="tflite"`` (set by the tflite backend) asks converters for TF ops TFLite's builtins
    hold where that is as exact (see ``ExportState.target``).
    """
    tf = import_tensorflow()
    load_converters()
    imports = dict(model.opset_imports)
    # Function ops without a converter become their ONNX function bodies first.
    expand_functions(model, ops)
    loop = onnx_loop(FRAMEWORK, "export", imports)
    loop.check_supported(list(model.graph), lambda node: converter_for(node, imports) is not None)
    infer_shapes(model)
    FoldConstantsPass()(model)
    graph = model.graph
    initializers = set(graph.initializers.values())
    inputs = [value for value in graph.inputs if value not in initializers]
    input_keys, output_keys = signature_keys(
        [v.name or "" for v in inputs], [v.name or "" for v in graph.outputs]
    )
    state = ExportState(tf, weights, target)
    state.lookup = lambda node, opset: ops.lookup(node.op_type, opset, node.domain)
    nodes = list(graph)

    def trace(nhwc: set[int]) -> tuple[Any, list[int]]:
        """The concrete signature function with inputs ``nhwc`` channels-last; and the outputs
        it returns channels-last."""
        specs = [
            tf.TensorSpec(
                _signature_shape(value, i in nhwc),
                tf_dtype(value.dtype, f"input {value.name!r}"),
                key,
            )
            for i, (value, key) in enumerate(zip(inputs, input_keys, strict=True))
        ]
        nhwc_out: list[int] = []

        def body(*args: Any) -> dict[str, Any]:
            state.start_trace()
            nhwc_out.clear()
            for i, (value, arg) in enumerate(zip(inputs, args, strict=True)):
                state.env[value] = Physical(
                    state.widened(arg), channels_last(4) if i in nhwc else None
                )

            def convert(node: ir.Node) -> None:
                converter = converter_for(node, imports)
                assert converter is not None  # check_supported refused the others
                state.convert_node(node, node_opset(node.domain, imports) or 0, converter)

            loop.convert(nodes, convert)
            returned = {}
            for i, (key, value) in enumerate(zip(output_keys, graph.outputs, strict=True)):
                held = state.env.get(value)
                if layout == "nhwc" and held is not None and held.perm == channels_last(4):
                    nhwc_out.append(i)
                    returned[key] = tf.identity(_as_declared(state, value, held.tensor), name=key)
                else:
                    logical = _as_declared(state, value, _logical(state, value))
                    returned[key] = tf.identity(logical, name=key)
            return returned

        function = tf.function(body, input_signature=specs, autograph=False)
        return function.get_concrete_function(), nhwc_out

    nhwc_in = _image_inputs(inputs) if layout == "nhwc" else set()
    concrete, nhwc_out = trace(nhwc_in)
    # An input whose own first user wanted it in ONNX's layout is no image input: keep it so.
    not_images = {i for i in nhwc_in if inputs[i] in state.logical}
    if not_images:
        nhwc_in -= not_images
        concrete, nhwc_out = trace(nhwc_in)
    module = tf.Module()
    module.weights = state.variables
    _record(module, INPUT_NAMES_ATTR, [v.name or "" for v in inputs])
    _record(module, OUTPUT_NAMES_ATTR, [v.name or "" for v in graph.outputs])
    nhwc_input_keys = [key for i, key in enumerate(input_keys) if i in nhwc_in]
    nhwc_output_keys = [output_keys[i] for i in nhwc_out]
    if nhwc_input_keys or nhwc_output_keys:
        _record(module, NHWC_INPUTS_ATTR, nhwc_input_keys)
        _record(module, NHWC_OUTPUTS_ATTR, nhwc_output_keys)
    return TFExport(
        module=module,
        function=concrete,
        input_keys=input_keys,
        output_keys=output_keys,
        input_names=[v.name or "" for v in inputs],
        output_names=[v.name or "" for v in graph.outputs],
        transposes=state.transposes,
        nhwc_inputs=nhwc_input_keys,
        nhwc_outputs=nhwc_output_keys,
    )


def _image_inputs(inputs: list[ir.Value]) -> set[int]:
    """Inputs that may be images: 4-D floats not fed straight into a Transpose (a model that
    already takes NHWC, as one tf2onnx made from Keras, transposes its input itself)."""
    found = set()
    for i, value in enumerate(inputs):
        if value.shape is None or len(value.shape) != 4:
            continue
        if value.dtype not in (ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.DOUBLE):
            continue
        if any(user.op_type == "Transpose" for user, _ in value.uses()):
            continue
        found.add(i)
    return found


def _record(module: Any, attr: str, names: list[str]) -> None:
    tf = import_tensorflow()
    setattr(module, attr, tf.Variable(names, dtype=tf.string, trainable=False))


def save_saved_model(
    model: ir.Model, path: Path, *, weights: str = "variables", layout: str = "onnx"
) -> TFExport:
    """Builds ``model`` and writes it as a SavedModel directory at ``path``."""
    tf = import_tensorflow()
    built = to_tensorflow(model, weights=weights, layout=layout)
    tf.saved_model.save(built.module, str(path), signatures={SERVING_SIGNATURE: built.function})
    return built


def run_built(built: TFExport, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Calls a built (unsaved) model's signature function; outputs keyed by ONNX names."""
    from unframe.shared_ir.inputs import align_feeds

    tf = import_tensorflow()
    feeds = align_feeds(built.input_names, inputs)
    specs = built.function.structured_input_signature[0]
    tensors = [
        tf.convert_to_tensor(
            _nhwc(np.asarray(feeds[name]), key in built.nhwc_inputs, to_nhwc=True),
            dtype=spec.dtype,
        )
        for name, key, spec in zip(built.input_names, built.input_keys, specs, strict=True)
    ]
    result = built.function(*tensors)
    return {
        name: _nhwc(_text_as_str(result[key].numpy()), key in built.nhwc_outputs, to_nhwc=False)
        for name, key in zip(built.output_names, built.output_keys, strict=True)
    }


def _text_as_str(value: Any) -> np.ndarray:
    """TF's string tensors come back as bytes; ONNX's (onnxruntime's) as str."""
    array = np.asarray(value, dtype=object) if isinstance(value, bytes) else value
    if array.dtype != object:
        return array
    return np.vectorize(
        lambda item: item.decode() if isinstance(item, bytes) else item, otypes=[object]
    )(array)


def _nhwc(array: np.ndarray, held_nhwc: bool, *, to_nhwc: bool) -> np.ndarray:
    if not held_nhwc:
        return array
    return array.transpose(channels_last(4) if to_nhwc else (0, 3, 1, 2))


def _logical(state: ExportState, value: ir.Value) -> Any:
    held = state.env.get(value)
    if held is None:
        if value.const_value is None:
            raise ValueError(f"graph output {value.name!r} is never produced")
        return state.tf.constant(value.const_value.numpy())
    return state.to_logical(value, held)


def _as_declared(state: ExportState, value: ir.Value, tensor: Any) -> Any:
    """A graph output in its ONNX type: a float16 one held as float32 narrowed back."""
    tf = state.tf
    if value.dtype == ir.DataType.FLOAT16 and tensor.dtype == tf.float32:
        return tf.cast(tensor, tf.float16)
    return tensor


def _signature_shape(value: ir.Value, nhwc: bool = False) -> list[int | None] | None:
    if value.shape is None:
        return None
    dims = [dim if isinstance(dim, int) else None for dim in value.shape]
    return [dims[axis] for axis in channels_last(4)] if nhwc else dims
