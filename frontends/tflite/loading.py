"""A ``.tflite`` -> the IR, through tf2onnx's TFLite path; nothing it left unconverted gets through.

The file is checked first in Python (``backends/tflite/native``: a whole FlatBuffer, its
signatures), so that a damaged file is exit 2 before any C++ reads it. tf2onnx then maps each TFLite
op to TF's and on to ONNX; its result gets the TensorFlow frontend's checks (every node a known ONNX
op, failed handlers listed, onnx's full checker). Inputs and outputs get back the ONNX names unframe
recorded in the file, in graph order, or else the signature's keys in the signature's order.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import onnx_ir as ir

from unframe.backends.tflite.native import DEFAULT_SIGNATURE, TFLiteFile, read_tflite
from unframe.frontends.tensorflow.loading import nchw_input, nchw_output
from unframe.frontends.tensorflow.quiet import (
    captured_tf2onnx_log,
    import_tensorflow,
    quiet_tensorflow,
)
from unframe.frontends.tensorflow.tf2onnx_handoff import (
    DEFAULT_OPSET,
    MAX_OPSET,
    failed_handlers,
    first_line,
    unconverted_nodes,
)
from unframe.frontends.tflite.handlers import register_tflite_handlers
from unframe.shared_ir.errors import BadInputError, UnsupportedError, UnsupportedOpsError
from unframe.shared_ir.options import ConvertOptions

FRAMEWORK = "tflite"
#: Metadata key naming what read the model.
SOURCE_KEY = "unframe.tflite.source"


def load_tflite(path: Path, options: ConvertOptions) -> ir.Model:
    """Reads the ``.tflite`` at ``path`` into the IR (opset ``options.opset``, default 18)."""
    model = read_tflite(path)
    signature_key = str(options.extra.get("signature") or DEFAULT_SIGNATURE)
    keys = [signature.key for signature in model.signatures]
    if options.extra.get("signature") and signature_key not in keys:
        # Named, the signature must be there (without a name, a file's only one is taken).
        raise BadInputError(
            f"{path}: the model has no signature {signature_key!r} "
            f"(it has: {', '.join(keys) or 'none'})",
            hint="name one of them with --signature, or leave it out",
        )
    _refuse_carried_types(model, path)
    inputs, outputs = _io_names(model, signature_key, path)
    result = _convert(path, model, inputs, outputs, opset=options.opset)
    _restore_onnx_layout(result, model)
    return result


def _refuse_carried_types(model: TFLiteFile, path: Path) -> None:
    """A file unframe wrote with inputs or outputs of a type TFLite lacks (float8, float4, int4,
    ...), held as uint8 bits or int8/uint8 values: tf2onnx writes opsets up to 18, which have
    none of those types, so the IR could only take the carriers (a different interface)."""
    carried = [
        *(f"input {key!r} ({kind})" for key, kind in model.carried_inputs.items()),
        *(f"output {key!r} ({kind})" for key, kind in model.carried_outputs.items()),
    ]
    if carried:
        raise UnsupportedError(
            f"unframe wrote this .tflite with {', '.join(carried)} carried in types TFLite has "
            f"(a float format as its uint8 bits, a 2- or 4-bit integer as int8/uint8); tf2onnx "
            f"reads TFLite into ONNX opsets up to {MAX_OPSET}, which have none of those types",
            path=str(path),
            framework=FRAMEWORK,
            hint="convert from the ONNX model the .tflite was written from; `unframe validate` "
            "runs the .tflite itself",
        )


def _restore_onnx_layout(result: ir.Model, model: TFLiteFile) -> None:
    """A file unframe wrote with ``--layout nhwc``: its recorded NHWC inputs and outputs become
    NCHW again behind one Transpose each, so the IR is the ONNX graph it came from."""
    names_in = {key: name for name, key in model.onnx_inputs or []}
    names_out = {key: name for name, key in model.onnx_outputs or []}
    nhwc_in = {names_in.get(key, key) for key in model.nhwc_inputs}
    nhwc_out = {names_out.get(key, key) for key in model.nhwc_outputs}
    graph = result.graph
    for value in list(graph.inputs):
        if value.name in nhwc_in and value.shape is not None and len(value.shape) == 4:
            nchw_input(graph, value)
    for index, value in enumerate(list(graph.outputs)):
        if value.name in nhwc_out and value.shape is not None and len(value.shape) == 4:
            nchw_output(graph, index, value)


def _io_names(
    model: TFLiteFile, signature_key: str, path: Path
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(IR name, TFLite tensor name) pairs of the inputs and outputs, in the order the IR keeps."""
    signature = model.signature(signature_key)
    if signature is None:
        if model.signatures:
            keys = ", ".join(s.key for s in model.signatures)
            raise BadInputError(
                f"{path}: the model has no signature {signature_key!r} (it has: {keys})",
                hint="name one with --signature",
            )
        return [], []  # tf2onnx takes the subgraph's own inputs and outputs
    tensor_in = dict(signature.inputs)
    tensor_out = dict(signature.outputs)
    if model.onnx_inputs is not None and model.onnx_outputs is not None:
        try:
            return (
                [(name, tensor_in[key]) for name, key in model.onnx_inputs],
                [(name, tensor_out[key]) for name, key in model.onnx_outputs],
            )
        except KeyError:
            raise BadInputError(
                f"{path}: the unframe metadata names a signature key the model does not have"
            ) from None
    return list(signature.inputs), list(signature.outputs)


def _convert(
    path: Path,
    model: TFLiteFile,
    inputs: list[tuple[str, str]],
    outputs: list[tuple[str, str]],
    *,
    opset: int | None,
) -> ir.Model:
    import_tensorflow()
    from tf2onnx import optimizer, tfonnx

    target = DEFAULT_OPSET if opset is None else opset
    if target > MAX_OPSET:
        raise UnsupportedError(
            f"tf2onnx writes ONNX opsets up to {MAX_OPSET}, not {target}",
            path=str(path),
            framework=FRAMEWORK,
            hint=f"import at opset {MAX_OPSET} (leave --opset out) and convert the ONNX model on",
        )
    register_tflite_handlers()
    rename = {tensor: name for name, tensor in inputs + outputs}
    with captured_tf2onnx_log() as records, quiet_tensorflow():
        try:
            onnx_graph = tfonnx.process_tf_graph(
                None,
                continue_on_error=True,
                opset=target,
                tflite_path=str(path),
                input_names=[tensor for _, tensor in inputs] or None,
                output_names=[tensor for _, tensor in outputs] or None,
                tensors_to_rename=rename,
            )
        except Exception as error:  # noqa: BLE001 - tf2onnx's own failure, said as such
            if isinstance(error, MemoryError):
                raise
            raise UnsupportedError(
                f"tf2onnx could not convert the TFLite model: {type(error).__name__}: "
                f"{first_line(error)}",
                path=str(path),
                framework=FRAMEWORK,
                hint="rerun with --debug for tf2onnx's log",
            ) from None
        failed = failed_handlers(records, model.operators, target)
        onnx_graph = optimizer.optimize_graph(onnx_graph, True)
        proto = onnx_graph.make_model(f"converted from {path.name}")
    unconverted = unconverted_nodes(proto, target, failed)
    if unconverted:
        raise UnsupportedOpsError(
            unconverted, framework=FRAMEWORK, direction="import", path=str(path)
        )
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise UnsupportedError(
            f"tf2onnx wrote a model that onnx's checker refuses: {first_line(error)}",
            path=str(path),
            framework=FRAMEWORK,
            hint="rerun with --debug for tf2onnx's log; unframe never passes such a model on",
        ) from None
    result = ir.from_proto(proto)
    result.metadata_props[SOURCE_KEY] = "tflite"
    return result
