"""Runs a ``.tflite`` on LiteRT (``ai_edge_litert``'s interpreter), fed and read by ONNX names."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.tensorflow.native.tf_import import stderr_silenced
from unframe.backends.tflite.native.carried import from_carrier, to_carrier
from unframe.backends.tflite.native.flatbuffer import DEFAULT_SIGNATURE, TFLiteFile
from unframe.shared_ir.errors import BadInputError, FrameworkNotInstalledError
from unframe.shared_ir.inputs import align_feeds


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Points fd 2 at /dev/null (TFLite's C++ writes there) unless unframe logs at DEBUG."""
    if logging.getLogger("unframe").isEnabledFor(logging.DEBUG):
        yield
        return
    with stderr_silenced():
        yield


def litert_interpreter() -> Any:
    """LiteRT's ``Interpreter`` class (its C++ logs silenced unless unframe logs at DEBUG)."""
    if not logging.getLogger("unframe").isEnabledFor(logging.DEBUG):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise FrameworkNotInstalledError(
            f"the tflite adapter runs models on ai-edge-litert, which cannot be imported: {error}",
            framework="tflite",
            hint="pip install 'unframe[tflite]'",
        ) from error
    return Interpreter


def run_tflite(
    model: TFLiteFile,
    inputs: Mapping[str, np.ndarray],
    *,
    where: str | None = None,
    signature: str = DEFAULT_SIGNATURE,
) -> dict[str, np.ndarray]:
    """Runs ``model``'s signature on ``inputs``; outputs in ONNX order where unframe recorded it.

    Inputs are matched by ONNX name where the file records them, else by signature key, else by
    position (``align_feeds``). A file without signatures is run through its subgraph's tensors.
    """
    # LiteRT's C++ prints "Created TensorFlow Lite XNNPACK delegate" to fd 2 when it first runs.
    with quiet_stderr():
        return _run(model, inputs, where, signature)


def _run(
    model: TFLiteFile, inputs: Mapping[str, np.ndarray], where: str | None, signature: str
) -> dict[str, np.ndarray]:
    interpreter_class = litert_interpreter()
    interpreter = _load(model, where)
    try:
        try:
            return _invoke(interpreter, model, inputs, signature)
        except RuntimeError as error:
            if "Delegate" not in str(error) and "delegate" not in str(error):
                raise
        # XNNPACK (LiteRT's default CPU delegate) refused a node it claimed: LiteRT's own kernels.
        from ai_edge_litert.interpreter import OpResolverType

        plain = interpreter_class(
            model_content=model.data,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        return _invoke(plain, model, inputs, signature)
    except (RuntimeError, ValueError) as error:
        raise BadInputError(
            f"LiteRT could not run the model: {_first_line(error)}", path=where
        ) from None


def _load(model: TFLiteFile, where: str | None) -> Any:
    """LiteRT's interpreter of ``model``; a file it cannot load is bad input, said in one line."""
    try:
        return litert_interpreter()(model_content=model.data)
    except (RuntimeError, ValueError) as error:
        raise BadInputError(
            f"LiteRT cannot load the model: {_first_line(error)}", path=where
        ) from None


def signature_inputs(
    model: TFLiteFile, *, where: str | None = None, signature: str = DEFAULT_SIGNATURE
) -> list[ir.Value]:
    """The inputs ``run_tflite`` takes, as IR values, read from the file alone (no import).

    Named and ordered as unframe recorded the ONNX graph's (else by signature key), of the ONNX
    type a carried input stands for (float8, int4, ...: its carrier is what LiteRT holds), in
    ONNX's layout for an input ``--layout nhwc`` made channels-last, a dynamic dim (-1 in the
    file's ``shape_signature``) as an unknown one.
    """
    with quiet_stderr():
        interpreter = _load(model, where)
        chosen = model.signature(signature)
        if chosen is None:
            details = {detail["name"]: detail for detail in interpreter.get_input_details()}
            order = [(name, name) for name in details]
        else:
            details = interpreter.get_signature_runner(chosen.key).get_input_details()
            recorded = model.onnx_inputs
            order = list(recorded) if recorded is not None else [(k, k) for k, _ in chosen.inputs]
    values = []
    for name, key in order:
        detail = details.get(key)
        if detail is None:
            raise BadInputError(
                f"the unframe metadata names an input {key!r} the model does not have", path=where
            )
        shape = detail.get("shape_signature")
        shape = detail["shape"] if shape is None or not len(shape) else shape
        dims: list[int | None] = [int(d) if d >= 0 else None for d in shape]
        if key in model.nhwc_inputs and len(dims) == 4:
            dims = [dims[0], dims[3], dims[1], dims[2]]
        kind = model.carried_inputs.get(key)
        dtype = ir.DataType[kind] if kind else ir.DataType.from_numpy(np.dtype(detail["dtype"]))
        values.append(ir.Value(name=name, type=ir.TensorType(dtype), shape=ir.Shape(dims)))
    return values


def _invoke(
    interpreter: Any, model: TFLiteFile, inputs: Mapping[str, np.ndarray], signature: str
) -> dict[str, np.ndarray]:
    chosen = model.signature(signature)
    if chosen is None:
        return _run_subgraph(interpreter, inputs)
    runner = interpreter.get_signature_runner(chosen.key)
    details = runner.get_input_details()
    recorded = [key for _, key in (model.onnx_inputs or []) + (model.onnx_outputs or [])]
    known = {key for key, _ in chosen.inputs + chosen.outputs}
    if not set(recorded) <= known:
        raise ValueError("the unframe metadata names a signature key the model does not have")
    if model.onnx_inputs is not None:
        names = [name for name, _ in model.onnx_inputs]
        fed = align_feeds(names, inputs)
        feeds = {key: fed[name] for name, key in model.onnx_inputs}
    else:
        feeds = align_feeds([key for key, _ in chosen.inputs], inputs)
    # Inputs and outputs --layout nhwc made channels-last are fed and read as ONNX's NCHW; those
    # of a type TFLite lacks go in and come out as their carrier (a float8's uint8 bits).
    arrays = {}
    for key, array in feeds.items():
        kind = model.carried_inputs.get(key)
        held = (
            to_carrier(array, kind)
            if kind is not None
            else np.asarray(array, dtype=details[key]["dtype"])
        )
        # np.require, not ascontiguousarray: that one makes a scalar input 1-D.
        arrays[key] = np.require(
            _nchw_to_nhwc(held) if key in model.nhwc_inputs else held, requirements="C"
        )
    result = runner(**arrays)

    def output(key: str) -> np.ndarray:
        array = result[key].transpose(0, 3, 1, 2) if key in model.nhwc_outputs else result[key]
        kind = model.carried_outputs.get(key)
        return np.array(array) if kind is None else from_carrier(array, kind)

    if model.onnx_outputs is not None:
        return {name: output(key) for name, key in model.onnx_outputs}
    return {key: output(key) for key, _ in chosen.outputs}


def _nchw_to_nhwc(array: np.ndarray) -> np.ndarray:
    if array.ndim != 4:
        raise ValueError(f"a channels-last input takes 4 dims, not {array.ndim}")
    return array.transpose(0, 2, 3, 1)


def _run_subgraph(interpreter: Any, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    input_details = interpreter.get_input_details()
    fed = align_feeds([detail["name"] for detail in input_details], inputs)
    for detail in input_details:
        array = np.asarray(fed[detail["name"]], dtype=detail["dtype"])
        if tuple(array.shape) != tuple(detail["shape"]):
            interpreter.resize_tensor_input(detail["index"], list(array.shape))
    interpreter.allocate_tensors()
    for detail in input_details:
        array = np.asarray(fed[detail["name"]], dtype=detail["dtype"])
        interpreter.set_tensor(detail["index"], np.ascontiguousarray(array))
    interpreter.invoke()
    return {
        detail["name"]: np.array(interpreter.get_tensor(detail["index"]))
        for detail in interpreter.get_output_details()
    }


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
