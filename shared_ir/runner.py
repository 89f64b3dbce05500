"""The reference runner: onnxruntime, falling back to ``onnx.reference`` for what ORT lacks."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import onnx
import onnx_ir as ir

#: In-memory protos cannot exceed 2 GiB; larger models are run from a file with external data.
_IN_MEMORY_LIMIT = 1 << 30


@dataclass
class RunResult:
    """Outputs keyed by graph output name, in order, and which engine computed them."""

    outputs: dict[str, np.ndarray]
    engine: str  # "onnxruntime" or "onnx.reference"
    fallback_reason: str | None = None


def run_reference(model: ir.Model | onnx.ModelProto, inputs: Mapping[str, np.ndarray]) -> RunResult:
    """Runs ``model`` on ``inputs`` with onnxruntime, or onnx.reference where ORT fails."""
    if isinstance(model, ir.Model) and _needs_file(model):
        with tempfile.TemporaryDirectory(prefix="unframe-ref-") as tmp:
            path = Path(tmp) / "model.onnx"
            ir.save(model, path, external_data="model.onnx.data")
            return run_reference_path(path, inputs)
    proto = model if isinstance(model, onnx.ModelProto) else ir.to_proto(model)
    return _run(proto.SerializeToString(), proto, inputs)


def run_reference_path(
    path: Path, inputs: Mapping[str, np.ndarray], model: ir.Model | None = None
) -> RunResult:
    """Runs the ``.onnx`` file at ``path`` (external data beside it is found by ORT).

    ``model``, the file as ``load_onnx`` read it (weights mapped, not read), gives the input and
    output names: parsing the file again would hold a second copy of weights stored inside it
    while onnxruntime holds its own (validation's peak, issue #15).
    """
    proto = onnx.load(str(path), load_external_data=False) if model is None else _names(model)
    return _run(str(path), proto, inputs)


def _names(model: ir.Model) -> onnx.ModelProto:
    """A model proto holding only the graph's input and output names, which ``_run`` reads."""
    proto = onnx.ModelProto()
    proto.graph.input.extend(onnx.ValueInfoProto(name=v.name or "") for v in model.graph.inputs)
    proto.graph.output.extend(onnx.ValueInfoProto(name=v.name or "") for v in model.graph.outputs)
    return proto


def run_onnxruntime(model: ir.Model, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """onnxruntime alone, no fallback: what the ONNX conformance baseline measures."""
    proto = ir.to_proto(model)
    declared = {i.name for i in proto.graph.input}
    feeds = {name: _feed(array) for name, array in inputs.items() if name in declared}
    return _run_onnxruntime(proto.SerializeToString(), feeds, [o.name for o in proto.graph.output])


def _needs_file(model: ir.Model) -> bool:
    total = 0
    for value in model.graph.initializers.values():
        tensor = value.const_value
        if tensor is None:
            continue
        if isinstance(tensor, ir.ExternalTensor):
            return True
        total += tensor.nbytes
    return total > _IN_MEMORY_LIMIT


def _run(
    source: str | bytes, proto: onnx.ModelProto, inputs: Mapping[str, np.ndarray]
) -> RunResult:
    output_names = [output.name for output in proto.graph.output]
    declared = {i.name for i in proto.graph.input}
    feeds = {name: _feed(array) for name, array in inputs.items() if name in declared}
    try:
        return RunResult(_run_onnxruntime(source, feeds, output_names), "onnxruntime")
    except Exception as error:  # noqa: BLE001 - any ORT failure sends us to the reference evaluator
        text = str(error).strip()
        reason = text.splitlines()[0] if text else type(error).__name__
    from onnx.reference import ReferenceEvaluator

    if isinstance(source, str):
        proto = onnx.load(source)
    evaluator = ReferenceEvaluator(proto)
    results = evaluator.run(None, feeds)
    outputs = {name: _output(value) for name, value in zip(output_names, results, strict=True)}
    return RunResult(outputs, "onnx.reference", reason)


def _run_onnxruntime(
    source: str | bytes, feeds: dict[str, object], output_names: list[str]
) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Errors come back as exceptions, which we report; ORT would also print them (level 3).
    options.log_severity_level = 4
    # Basic optimizations only: the reference should compute what the graph says, not a fusion.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    # onnxruntime sizes its pool by the cores, not by OMP_NUM_THREADS: a batch worker's share.
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        options.intra_op_num_threads = int(threads)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    results = session.run(output_names, feeds)
    types = {output.name: output.type for output in session.get_outputs()}
    return {
        name: _typed(_output(value), types.get(name))
        for name, value in zip(output_names, results, strict=True)
    }


#: onnxruntime's type names of the element types it hands back as their raw bits (numpy has no
#: such type) -> the ml_dtypes type those bits are.
_RAW_BITS = {
    "tensor(float8e4m3fn)": ml_dtypes.float8_e4m3fn,
    "tensor(float8e4m3fnuz)": ml_dtypes.float8_e4m3fnuz,
    "tensor(float8e5m2)": ml_dtypes.float8_e5m2,
    "tensor(float8e5m2fnuz)": ml_dtypes.float8_e5m2fnuz,
    "tensor(bfloat16)": ml_dtypes.bfloat16,
}


def _typed(value: Any, declared: str | None) -> Any:
    """An output onnxruntime returned as raw bits (float8 as uint8), seen as its own type."""
    narrow = _RAW_BITS.get(declared or "")
    if narrow is None or not isinstance(value, np.ndarray) or value.dtype.kind not in "iu":
        return value
    if value.dtype.itemsize != np.dtype(narrow).itemsize:
        return value
    return value.view(narrow)


def _feed(value: object) -> object:
    # Sequence inputs are lists of arrays and optional ones may be None: pass them as they are.
    return value if isinstance(value, list | tuple) or value is None else np.asarray(value)


def _output(value: Any) -> Any:
    # Sequence outputs stay lists of arrays; optional outputs may be None.
    if isinstance(value, list | tuple):
        return [_output(item) for item in value]
    return value if value is None else np.asarray(value)
