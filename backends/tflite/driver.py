"""The driver: ONNX IR -> the TensorFlow backend's traced signature function -> TFLiteConverter.

The TensorFlow backend (``backends/tensorflow``) runs the shared conversion loop and builds one
``tf.function`` whose signature is the ONNX graph's inputs and outputs; TFLiteConverter lowers that
concrete function to TFLite builtin ops. What the builtins cannot hold is refused, every such ONNX
node listed (TFLite's own error names the TF op and the name scope, which is the ONNX node's name):
LiteRT's interpreter here has no Flex delegate, so a file with ``SELECT_TF_OPS`` could not run.
``select_tf_ops=True`` opts into them anyway. The file records the ONNX input and output names in
graph order (metadata ``unframe.onnx_names``): TFLite sorts a signature's keys.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.tensorflow.driver import export_registry as tensorflow_registry
from unframe.backends.tensorflow.driver import to_tensorflow
from unframe.backends.tensorflow.native import import_tensorflow, tf_name
from unframe.backends.tflite.carried_types import carry_narrow_types
from unframe.backends.tflite.native import (
    parse_tflite,
    quiet_stderr,
    run_tflite,
    schema,
    with_onnx_names,
)
from unframe.shared_ir.errors import (
    BadInputError,
    UnsupportedError,
    UnsupportedOp,
    UnsupportedOpsError,
)
from unframe.shared_ir.op_registry import OpRegistry

FRAMEWORK = "tflite"
PRECISIONS = ("float32", "float16")

#: TFLite converter error codes and what they mean for the user.
_NEEDS = {
    "ERROR_NEEDS_FLEX_OPS": "TFLite's builtin ops cannot hold {op} (it would need a Flex op, "
    "which LiteRT here cannot run)",
    "ERROR_NEEDS_CUSTOM_OPS": "TFLite has no op for {op}, not even a Flex one",
}


@dataclass
class TFLiteExport:
    """A converted model: the ``.tflite`` bytes and what the TensorFlow build did."""

    data: bytes
    #: Transposes the TensorFlow backend's layout pass added.
    transposes: int


def export_registry() -> OpRegistry[Any]:
    """The TensorFlow backend's registry: every ONNX op the TFLite path can start from."""
    return tensorflow_registry()


def to_tflite(
    model: ir.Model,
    *,
    precision: str = "float32",
    select_tf_ops: bool = False,
    layout: str = "onnx",
    path: str | None = None,
) -> TFLiteExport:
    """Converts ``model`` to ``.tflite`` bytes (float32 weights, or float16 with ``precision``).

    The graph inputs' shapes are the file's (``--input`` fixes them before, in ``api.convert``:
    ``shared_ir.inputs.fix_input_shapes``).

    Raises ``UnsupportedOpsError`` listing every node whose TF ops TFLite's builtins cannot hold,
    ``UnsupportedError`` for a graph input TFLite cannot take (unknown rank) or another refusal of
    TFLiteConverter's, said in one line.
    """
    if precision not in PRECISIONS:
        raise UnsupportedError(
            f"tflite writes float32 or float16 weights, not {precision!r}",
            framework=FRAMEWORK,
            path=path,
            hint="--precision float32|float16",
        )
    _check_inputs(model, path)
    source = model
    tf = import_tensorflow()
    # The ONNX nodes TFLiteConverter's errors name (nodes lowered below nest their TF scopes
    # under the name of the node they came from).
    nodes = {tf_name(node.name or node.op_type, "node"): node for node in model.graph.all_nodes()}
    carried = carry_narrow_types(model, path)
    if carried.types and precision == "float16":
        raise UnsupportedError(
            f"the model holds {', '.join(carried.types)}, which TFLite has no type for; unframe "
            "computes on them through exact float32 tables (values, rounding thresholds) that "
            "float16 weights would round",
            framework=FRAMEWORK,
            path=path,
            hint="convert with --precision float32",
        )
    model = carried.model
    built = to_tensorflow(model, layout=layout, target="tflite")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([built.function], built.module)
    supported = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if select_tf_ops:
        supported.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = supported
    if precision == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    from tensorflow.lite.python.convert_phase import ConverterError

    try:
        with quiet_stderr():
            data = converter.convert()
    except ConverterError as error:
        refusal = _refusal(error, nodes, path)
        options = {"precision": precision, "select_tf_ops": select_tf_ops, "layout": layout}
        raise _name_dynamic_dims(refusal, source, path, options) from None
    pairs_in = list(zip(built.input_names, built.input_keys, strict=True))
    pairs_out = list(zip(built.output_names, built.output_keys, strict=True))
    _refuse_what_litert_aborts_on(bytes(data), nodes, path)
    keys_in, keys_out = dict(pairs_in), dict(pairs_out)
    data = with_onnx_names(
        bytes(data),
        pairs_in,
        pairs_out,
        built.nhwc_inputs,
        built.nhwc_outputs,
        {keys_in[name]: kind for name, kind in carried.inputs.items()},
        {keys_out[name]: kind for name, kind in carried.outputs.items()},
    )
    return TFLiteExport(data=data, transposes=built.transposes)


def run_export(export: TFLiteExport, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs converted bytes on LiteRT (no file written); outputs keyed by ONNX names.

    A model LiteRT cannot run is the conversion's limit here, not a fault of the user's input.
    """
    try:
        return run_tflite(parse_tflite(export.data), inputs)
    except BadInputError as error:
        raise UnsupportedError(
            f"LiteRT cannot run what TFLiteConverter wrote: {error.message}",
            framework=FRAMEWORK,
        ) from None


#: TFLite comparisons whose unquantized uint8 kernel aborts the process in LiteRT 2.3 (found by
#: onnx's test_equal_uint8): TFLiteConverter writes them, so they are refused before anything runs.
_ABORTING_UINT8_OPS = ("EQUAL", "NOT_EQUAL")


def _refuse_what_litert_aborts_on(data: bytes, nodes: dict[str, ir.Node], path: str | None) -> None:
    bindings = schema()
    model = bindings.ModelT.InitFromPackedBuf(bytearray(data), 0)
    codes = {getattr(bindings.BuiltinOperator, name): name for name in _ABORTING_UINT8_OPS}
    found = []
    for subgraph in model.subgraphs or []:
        tensors = subgraph.tensors or []
        for operator in subgraph.operators or []:
            code = model.operatorCodes[int(operator.opcodeIndex)]
            kind = codes.get(max(int(code.builtinCode), int(code.deprecatedBuiltinCode)))
            if kind is None:
                continue
            inputs = [tensors[int(i)] for i in operator.inputs if int(i) >= 0]
            if any(t.type == bindings.TensorType.UINT8 and not _quantized(t) for t in inputs):
                name = tensors[int(operator.outputs[0])].name
                scope = (name.decode() if isinstance(name, bytes) else str(name)).split(";")[0]
                node = _node_for(scope.rsplit("/", 1)[0], nodes)
                found.append(
                    UnsupportedOp(
                        node.name or scope if node is not None else scope,
                        node.op_type if node is not None else kind,
                        reason=f"LiteRT's {kind} kernel aborts on uint8 tensors that are not "
                        "quantized; cast the inputs to int32 first",
                    )
                )
    if found:
        raise UnsupportedOpsError(found, framework=FRAMEWORK, path=path)


def _quantized(tensor: Any) -> bool:
    return tensor.quantization is not None and tensor.quantization.scale is not None


def _check_inputs(model: ir.Model, path: str | None) -> None:
    initializers = set(model.graph.initializers.values())
    for value in model.graph.inputs:
        if value in initializers:
            continue
        if value.shape is None:
            raise UnsupportedError(
                f"graph input {value.name!r} has no rank; a TFLite signature needs each input's "
                "rank (its dims may be dynamic)",
                framework=FRAMEWORK,
                path=path,
                hint=f"give its shape with --input {value.name}=D1,D2,... (a dim may stay "
                "dynamic: ? or a symbol), or its rank in the ONNX model (e.g. with "
                "onnx.tools.update_model_dims)",
            )


#: The size a dynamic dim is fixed at to learn whether it is what TFLite cannot hold (not 1,
#: which lets the converter fold broadcasts and squeezes away).
_PROBE_SIZE = 2


def _name_dynamic_dims(
    refusal: UnsupportedError, model: ir.Model, path: str | None, options: dict[str, Any]
) -> UnsupportedError:
    """Where the refused model converts once its inputs' dynamic dims are fixed, every listed
    node's reason says so and names those dims (TFLite holds a dynamic dim as such, but some of
    TFLiteConverter's lowerings need static shapes). Otherwise the refusal is returned as it is.
    """
    initializers = set(model.graph.initializers.values())
    inputs = [v for v in model.graph.inputs if v not in initializers and v.shape is not None]
    dynamic = [
        (value, axis, dim)
        for value in inputs
        for axis, dim in enumerate(value.shape or ())
        if not isinstance(dim, int)
    ]
    if not isinstance(refusal, UnsupportedOpsError) or not dynamic:
        return refusal
    shapes = {value: value.shape for value, _, _ in dynamic}
    try:
        for value, shape in shapes.items():
            dims = [d if isinstance(d, int) else _PROBE_SIZE for d in shape or ()]
            value.shape = ir.Shape(dims)
        to_tflite(model, path=path, **options)
    except Exception as error:  # noqa: BLE001 - still refused: the first refusal stands
        if isinstance(error, MemoryError):
            raise
        return refusal
    finally:
        for value, shape in shapes.items():
            value.shape = shape
    named = ", ".join(
        f"input {value.name!r} dim {axis}"
        + (f" ({dim.value})" if isinstance(dim, ir.SymbolicDim) and dim.value else "")
        for value, axis, dim in dynamic
    )
    why = (
        f"; TFLite cannot hold the dynamic dims here: the model converts with {named} fixed "
        "(export it with static shapes)"
    )
    ops = [dataclasses.replace(op, reason=op.reason + why) for op in refusal.ops]
    return UnsupportedOpsError(ops, framework=FRAMEWORK, path=path)


def _refusal(error: Exception, nodes: dict[str, ir.Node], path: str | None) -> UnsupportedError:
    """TFLiteConverter's error as one located refusal: every node it names, else its first line."""
    found: dict[str, UnsupportedOp] = {}
    for data in getattr(error, "errors", None) or []:
        tf_op = data.operator.name.removeprefix("tf.") if data.HasField("operator") else ""
        code = type(data).ErrorCode.Name(data.error_code) if data.error_code else ""
        scope = _scope(data)
        if not tf_op or scope is None:
            continue
        node = _node_for(scope, nodes)
        if code in _NEEDS:
            reason = _NEEDS[code].format(op=f"TF op {tf_op}")
        else:
            reason = f"TFLiteConverter refused {data.operator.name}: {_summary(data.error_message)}"
        if node is None:
            found.setdefault(scope, UnsupportedOp(scope, f"TF {tf_op}", reason=reason))
            continue
        key = node.name or scope
        if key not in found:
            found[key] = UnsupportedOp(node.name or scope, node.op_type, node.domain, reason=reason)
    if found:
        order = {node.name: index for index, node in enumerate(nodes.values())}
        listed = sorted(found.values(), key=lambda op: order.get(op.node, len(order)))
        return UnsupportedOpsError(listed, framework=FRAMEWORK, path=path)
    return UnsupportedError(
        f"TFLiteConverter refused the model: {_summary(str(error))}",
        framework=FRAMEWORK,
        path=path,
        hint="rerun with --debug for the converter's log",
    )


def _scope(data: Any) -> str | None:
    """The name scope of the TF op an error names (``node/Op@__inference_body_6`` -> ``node``)."""
    if not data.HasField("location"):
        return None
    for call in data.location.call:
        name = call.name.split("@", 1)[0]
        if name and "/" in name:
            return name.rsplit("/", 1)[0]
    return None


def _node_for(scope: str, nodes: dict[str, ir.Node]) -> ir.Node | None:
    # TF uniquifies a repeated scope as ``name_1``; an ONNX node name may itself hold ``/``.
    while scope:
        if scope in nodes:
            return nodes[scope]
        trimmed = re.sub(r"_\d+$", "", scope)
        if trimmed != scope and trimmed in nodes:
            return nodes[trimmed]
        if "/" not in scope:
            return None
        scope = scope.rsplit("/", 1)[0]
    return None


def _summary(text: str) -> str:
    """The first ``error:`` line of the converter's text, else its first line."""
    for line in text.splitlines():
        line = line.strip()
        if "error:" in line:
            return line.split("error:", 1)[1].strip()[:300]
    return (text.strip().splitlines() or ["no message"])[0][:300]
