"""What the CLI hands the TensorFlow frontend: SavedModels, Keras files, frozen GraphDefs -> IR.

- SavedModel directories (TF2 object graphs and TF1 graphs): one signature, ``serving_default``
  unless ``options.extra["signature"]`` (``--signature NAME``; API:
  ``unframe.converters.api.convert(..., signature="name")``) names another; IR inputs and outputs
  are the signature's keys.
- ``.keras`` (Keras 3) and legacy ``.h5`` (Keras 2) files: see ``keras_files``.
- Frozen GraphDef ``.pb`` files: inputs are the names given with ``--input`` (``x`` or ``x:0``),
  else every Placeholder; outputs are ``options.extra["output_nodes"]`` (``--output-node``; API:
  ``output_nodes=["y"]``), else every op whose outputs nothing reads.
- A SavedModel unframe wrote with ``--layout nhwc`` reads back in the ONNX graph's layout: its
  recorded channels-last inputs and outputs get a Transpose at the IR's boundary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.frontends.tensorflow.freezing import freeze_function
from unframe.frontends.tensorflow.keras_files import (
    H5_SUFFIXES,
    KERAS_SUFFIXES,
    keras_signature,
    load_keras_file,
    trace_keras,
)
from unframe.frontends.tensorflow.keras_files import (
    output_names as keras_output_names,
)
from unframe.frontends.tensorflow.quiet import import_tensorflow, quiet_tensorflow
from unframe.frontends.tensorflow.tf2onnx_handoff import FrozenGraph, to_ir
from unframe.shared_ir.errors import BadInputError, UnsupportedError
from unframe.shared_ir.inputs import InputSpec
from unframe.shared_ir.options import ConvertOptions

FRAMEWORK = "tensorflow"
GRAPH_DEF_SUFFIXES = (".pb",)
DEFAULT_SIGNATURE = "serving_default"

#: Metadata key of a frozen GraphDef's IR: the tensors taken as its outputs (``x:0,y:0``).
GRAPH_OUTPUTS_KEY = "unframe.tensorflow.graph_outputs"

#: Ops that end a frozen graph without being one of its outputs.
_NOT_OUTPUTS = {"Const", "NoOp", "Placeholder", "PlaceholderWithDefault", "Assert", "VarHandleOp"}


def is_saved_model(path: Path) -> bool:
    """Whether ``path`` is a SavedModel directory (it holds ``saved_model.pb`` or ``.pbtxt``)."""
    return path.is_dir() and any(
        (path / name).is_file() for name in ("saved_model.pb", "saved_model.pbtxt")
    )


def load_tensorflow(path: Path, options: ConvertOptions) -> ir.Model:
    """Reads a SavedModel directory, a ``.keras``/``.h5`` file or a frozen ``.pb`` into the IR.

    Raises:
        BadInputError: the path is none of those, or is one that cannot be read (exit 2).
        UnsupportedError: the model holds code, custom objects or ops unframe cannot take (exit 3).
    """
    name = path.name.lower()
    if path.is_dir():
        return load_saved_model(path, options)
    if name == "saved_model.pb" and (path.parent / "variables").is_dir():
        return load_saved_model(path.parent, options)
    if name.endswith(KERAS_SUFFIXES + H5_SUFFIXES):
        model, loader = load_keras_file(path)
        return from_keras(model, options, path=str(path), source=loader)
    if name.endswith(GRAPH_DEF_SUFFIXES):
        return load_graph_def(path, options)
    raise BadInputError(
        "not a TensorFlow model: expected a SavedModel directory, a .keras, .h5 or frozen .pb file",
        path=str(path),
        framework=FRAMEWORK,
    )


# -- SavedModel -------------------------------------------------------------------------------


def load_saved_model(path: Path, options: ConvertOptions) -> ir.Model:
    """Converts one signature of a SavedModel directory (TF2 or TF1)."""
    if not is_saved_model(path):
        raise BadInputError(
            "not a SavedModel: the directory holds no saved_model.pb",
            path=str(path),
            framework=FRAMEWORK,
            hint="point at the directory tf.saved_model.save or model.export wrote",
        )
    tf = import_tensorflow()
    signature = str(options.extra.get("signature") or DEFAULT_SIGNATURE)
    try:
        with quiet_tensorflow():
            loaded = tf.saved_model.load(str(path))
    except Exception as error:  # noqa: BLE001 - TF's reason, said as a bad file
        if isinstance(error, MemoryError):
            raise
        raise BadInputError(
            f"TensorFlow cannot load the SavedModel: {type(error).__name__}: {_reason(error)}",
            path=str(path),
            framework=FRAMEWORK,
            hint="is it complete? saved_model.pb and variables/ must be as TensorFlow wrote them",
        ) from None
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    if signature not in signatures:
        have = ", ".join(sorted(signatures)) or "none"
        raise BadInputError(
            f"the SavedModel has no signature {signature!r} (its signatures: {have})",
            path=str(path),
            framework=FRAMEWORK,
            hint="choose one with --signature NAME (API: signature='NAME')"
            if signatures
            else "save the model with signatures= (tf.saved_model.save) or with model.export",
        )
    function = signatures[signature]
    inputs, input_names = _signature_inputs(function, tf, path)
    outputs, names_out = _signature_outputs(function, path)
    freezing = freeze_function(function, taken_names=input_names + names_out)
    frozen = FrozenGraph(
        freezing.graph_def,
        inputs,
        outputs,
        input_names,
        names_out,
        source=f"SavedModel signature {signature!r}",
        shape_override=_shape_override(inputs, input_names, options.inputs),
        held=freezing.held,
    )
    model = to_ir(frozen, opset=options.opset, path=str(path))
    _restore_onnx_layout(model, loaded)
    _restore_onnx_names(model, loaded)
    return model


def _restore_onnx_names(model: ir.Model, loaded: Any) -> None:
    """A SavedModel unframe wrote: its inputs and outputs get back the ONNX names and order it
    recorded (a signature orders its keys alphabetically and holds sanitized names)."""
    from unframe.backends.tensorflow.native import (
        INPUT_NAMES_ATTR,
        OUTPUT_NAMES_ATTR,
        signature_keys,
    )
    from unframe.shared_ir.traversal import all_values

    recorded_inputs = getattr(loaded, INPUT_NAMES_ATTR, None)
    recorded_outputs = getattr(loaded, OUTPUT_NAMES_ATTR, None)
    if recorded_inputs is None or recorded_outputs is None:
        return
    input_names = [item.decode() for item in recorded_inputs.numpy().tolist()]
    output_names = [item.decode() for item in recorded_outputs.numpy().tolist()]
    input_keys, output_keys = signature_keys(input_names, output_names)
    graph = model.graph
    for values, keys, names in (
        (graph.inputs, input_keys, input_names),
        (graph.outputs, output_keys, output_names),
    ):
        by_key = {value.name: value for value in values}
        if set(by_key) != set(keys):
            return  # not the signature unframe recorded (edited since): keep TF's own
        ordered = [by_key[key] for key in keys]
        taken = {value.name for value in all_values(graph)} - set(by_key)
        for value, name in zip(ordered, names, strict=True):
            if name and name not in taken:  # never two values of one name
                value.name = name
        values.clear()
        values.extend(ordered)


def _restore_onnx_layout(model: ir.Model, loaded: Any) -> None:
    """A SavedModel unframe wrote with ``--layout nhwc``: its recorded NHWC inputs and outputs
    become NCHW again behind one Transpose each, so the IR is the ONNX graph it came from."""
    from unframe.backends.tensorflow.native import NHWC_INPUTS_ATTR, NHWC_OUTPUTS_ATTR

    graph = model.graph
    for attr, values, is_input in (
        (NHWC_INPUTS_ATTR, graph.inputs, True),
        (NHWC_OUTPUTS_ATTR, graph.outputs, False),
    ):
        variable = getattr(loaded, attr, None)
        if variable is None:
            continue
        keys = {item.decode() for item in variable.numpy().tolist()}
        for index, value in enumerate(list(values)):
            if value.name not in keys or value.shape is None or len(value.shape) != 4:
                continue
            if is_input:
                nchw_input(graph, value)
            else:
                nchw_output(graph, index, value)


def nchw_input(graph: ir.Graph, value: ir.Value) -> None:
    """The 4-D graph input ``value``, held NHWC by the file, taken NCHW behind one Transpose."""
    name = value.name or ""
    held = ir.Value(name=f"{name}__nhwc", shape=value.shape, type=value.type)
    value.replace_all_uses_with(held)
    transpose = ir.node("Transpose", [value], {"perm": [0, 2, 3, 1]}, outputs=[held])
    if len(graph):
        graph.insert_before(graph[0], transpose)
    else:
        graph.append(transpose)
    dims = list(value.shape or ())
    value.shape = ir.Shape([dims[0], dims[3], dims[1], dims[2]])


def nchw_output(graph: ir.Graph, index: int, value: ir.Value) -> None:
    """The 4-D graph output ``index``, held NHWC by the file, given NCHW behind one Transpose."""
    name = value.name or ""
    value.name = f"{name}__nhwc"
    dims = list(value.shape or ())
    result = ir.Value(name=name, shape=ir.Shape([dims[0], dims[3], dims[1], dims[2]]))
    result.type = value.type
    graph.append(ir.node("Transpose", [value], {"perm": [0, 3, 1, 2]}, outputs=[result]))
    graph.outputs[index] = result


def _signature_inputs(function: Any, tf: Any, path: Path) -> tuple[list[str], list[str]]:
    """Input tensor names and their signature keys, in the signature's (sorted-key) order."""
    args, kwargs = function.structured_input_signature
    specs = tf.nest.flatten(args) + [kwargs[key] for key in sorted(kwargs)]
    keys = [spec.name for spec in tf.nest.flatten(args)] + sorted(kwargs)
    # The function's inputs are the signature's, then its captures (variables, and eager tensors
    # it closed over, which freezing turns into constants): only the leading ones are fed.
    own = function.inputs[: len(function.inputs) - len(function.captured_inputs)]
    tensors = [t.name for t in own if t.dtype != tf.resource]
    if len(tensors) != len(specs) or not all(isinstance(s, tf.TensorSpec) for s in specs):
        raise UnsupportedError(
            "the signature takes composite tensors (sparse or ragged), which tf2onnx cannot take",
            path=str(path),
            framework=FRAMEWORK,
        )
    return tensors, [str(key) for key in keys]


def _signature_outputs(function: Any, path: Path) -> tuple[list[str], list[str]]:
    structured = function.structured_outputs
    tensors = [t.name for t in function.outputs]
    if not isinstance(structured, Mapping):
        return tensors, [f"output_{i}" for i in range(len(tensors))]
    keys = sorted(structured)  # the flattening order of function.outputs
    if len(keys) != len(tensors):
        raise UnsupportedError(
            "the signature returns composite tensors (sparse or ragged), which tf2onnx cannot take",
            path=str(path),
            framework=FRAMEWORK,
        )
    # A TF1 signature holds its graph's tensors (their names say which is which); a TF2 one
    # holds TensorSpecs, in the order of function.outputs.
    named = [getattr(structured[key], "name", None) for key in keys]
    if set(named) == set(tensors):
        tensors = [str(name) for name in named]
    return tensors, [str(key) for key in keys]


def _shape_override(
    tensors: Sequence[str], names: Sequence[str], specs: Mapping[str, InputSpec]
) -> dict[str, list[int | None]]:
    """``--input`` shapes for the named inputs (a dim given as ``?`` or a symbol stays dynamic)."""
    unknown = sorted(set(specs) - set(names) - {t.split(":")[0] for t in tensors})
    if unknown:
        raise BadInputError(
            f"--input names {', '.join(unknown)}, which the model does not take",
            framework=FRAMEWORK,
            hint=f"inputs: {', '.join(names)}",
        )
    override = {}
    for tensor, name in zip(tensors, names, strict=True):
        spec = specs.get(name) or specs.get(tensor.split(":")[0])
        if spec is not None and spec.shape is not None:
            override[tensor] = [dim if isinstance(dim, int) else None for dim in spec.shape]
    return override


# -- Keras ------------------------------------------------------------------------------------


def from_keras(
    model: Any,
    options: ConvertOptions | None = None,
    *,
    path: str | None = None,
    source: str = "Keras model",
) -> ir.Model:
    """Converts a Keras model object (Keras 3 or tf_keras; Sequential, functional, subclassed).

    A subclassed model without Input layers takes its input shapes from ``options.inputs``.
    """
    options = options or ConvertOptions()
    signature, input_names = keras_signature(model, options.inputs, options.dynamic)
    try:
        function = trace_keras(model, signature)
    except (TypeError, ValueError) as error:
        raise BadInputError(
            f"Keras could not trace the model on inputs {_describe(signature)}: {_reason(error)}",
            path=path,
            framework=FRAMEWORK,
            hint="give the input shapes with --input NAME=D1,D2,...:DTYPE",
        ) from None
    return from_concrete_function(
        function,
        input_names=input_names,
        output_names=None,
        opset=options.opset,
        path=path,
        source=source,
        keras_model=model,
    )


def from_concrete_function(
    function: Any,
    *,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    opset: int | None = None,
    path: str | None = None,
    source: str = "tf.function",
    keras_model: Any = None,
) -> ir.Model:
    """Converts a ``tf.function``'s concrete function; its inputs named ``input_names``."""
    tf = import_tensorflow()
    inputs = [t.name for t in function.inputs if t.dtype != tf.resource]
    outputs = [t.name for t in function.outputs if t.dtype != tf.resource]
    names_in = list(input_names) if input_names else [t.split(":")[0] for t in inputs]
    if output_names:
        names_out = list(output_names)
    elif keras_model is not None:
        names_out = keras_output_names(keras_model, len(outputs))
    else:
        names_out = [f"output_{i}" for i in range(len(outputs))]
    freezing = freeze_function(function, taken_names=names_in + names_out)
    frozen = FrozenGraph(
        freezing.graph_def,
        inputs,
        outputs,
        names_in,
        names_out,
        source=source,
        held=freezing.held,
    )
    return to_ir(frozen, opset=opset, path=path)


# -- frozen GraphDef --------------------------------------------------------------------------


def _read_graph_def(tf: Any, path: Path) -> Any:
    """The frozen GraphDef at ``path``; a file that does not parse is bad input."""
    from google.protobuf.message import DecodeError

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except DecodeError as error:
        raise BadInputError(
            f"not a frozen TensorFlow GraphDef: {error}", path=str(path), framework=FRAMEWORK
        ) from None
    return graph_def


def load_graph_def(path: Path, options: ConvertOptions) -> ir.Model:
    """Converts a frozen GraphDef; inputs from ``--input``, outputs from ``--output-node``."""
    tf = import_tensorflow()
    graph_def = _read_graph_def(tf, path)
    ops = {node.name: node.op for node in graph_def.node}
    if not ops:
        raise BadInputError(
            "not a frozen TensorFlow GraphDef: it holds no nodes",
            path=str(path),
            framework=FRAMEWORK,
        )
    if any(op in ("VariableV2", "VarHandleOp") for op in ops.values()):
        raise BadInputError(
            "the GraphDef holds variables, so it is not frozen",
            path=str(path),
            framework=FRAMEWORK,
            hint="freeze it (convert_variables_to_constants), or convert the SavedModel instead",
        )
    given = list(options.inputs) or [n for n, op in ops.items() if op == "Placeholder"]
    given_out = (
        options.extra.get("output_nodes") or options.extra.get("outputs") or _sink_ops(graph_def)
    )
    if isinstance(given_out, str):
        given_out = given_out.split(",")
    inputs = [_tensor_name(name, ops, path, "input") for name in given]
    outputs = [_tensor_name(str(name), ops, path, "output") for name in given_out]
    frozen = FrozenGraph(
        graph_def,
        inputs,
        outputs,
        [t.split(":")[0] for t in inputs],
        [_graph_output_name(t) for t in outputs],
        source="frozen GraphDef",
        shape_override=_shape_override(inputs, [t.split(":")[0] for t in inputs], options.inputs),
    )
    from tf2onnx import tf_loader

    with quiet_tensorflow(), tf.Graph().as_default():
        try:
            tf.import_graph_def(graph_def, name="")
        except (ValueError, tf.errors.OpError) as error:
            raise BadInputError(
                f"TensorFlow cannot import the GraphDef: {_reason(error)}",
                path=str(path),
                framework=FRAMEWORK,
            ) from None
        frozen.graph_def = tf_loader.tf_optimize(inputs, outputs, graph_def)
    model = to_ir(frozen, opset=options.opset, path=str(path))
    model.metadata_props[GRAPH_OUTPUTS_KEY] = ",".join(outputs)
    return model


def run_graph_def(
    path: Path, inputs: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Runs a frozen GraphDef in TensorFlow: ``inputs`` keyed by node name (as the IR names
    them), ``outputs`` the tensors to fetch (as ``load_graph_def`` recorded them in
    ``GRAPH_OUTPUTS_KEY``; default: every op whose outputs nothing reads), keyed by IR name."""
    tf = import_tensorflow()
    graph_def = _read_graph_def(tf, path)
    ops = {node.name: node.op for node in graph_def.node}
    fetched = [_tensor_name(n, ops, path, "output") for n in outputs or _sink_ops(graph_def)]
    fed = [_tensor_name(name, ops, path, "input") for name in inputs]
    with quiet_tensorflow():
        wrapped = tf.compat.v1.wrap_function(
            lambda: tf.compat.v1.import_graph_def(graph_def, name=""), []
        )
        element = wrapped.graph.as_graph_element
        function = wrapped.prune([element(t) for t in fed], [element(t) for t in fetched])
        results = function(*[tf.constant(np.asarray(a)) for a in inputs.values()])
    return {
        _graph_output_name(tensor): np.asarray(result)
        for tensor, result in zip(fetched, results, strict=True)
    }


def _graph_output_name(tensor: str) -> str:
    """The IR's name of a fetched tensor (``load_graph_def``'s rule)."""
    return tensor.split(":")[0] if tensor.endswith(":0") else tensor.replace(":", "_")


def _sink_ops(graph_def: Any) -> list[str]:
    read = {name.lstrip("^").split(":")[0] for node in graph_def.node for name in node.input}
    return [
        node.name
        for node in graph_def.node
        if node.name not in read and node.op not in _NOT_OUTPUTS
    ]


def _tensor_name(name: str, ops: Mapping[str, str], path: Path, what: str) -> str:
    node, _, port = name.partition(":")
    if node not in ops:
        raise BadInputError(
            f"the graph has no node {node!r} to take as an {what}",
            path=str(path),
            framework=FRAMEWORK,
            hint="name graph nodes (e.g. --input x=1,28,28,1) as the GraphDef spells them",
        )
    return f"{node}:{port or 0}"


def _describe(signature: Sequence[Any]) -> str:
    return ", ".join(f"{spec.name}{list(spec.shape)}" for spec in signature)


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
