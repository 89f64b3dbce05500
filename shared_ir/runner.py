"""The reference runner: onnxruntime, falling back to ``onnx.reference`` for what ORT lacks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
import onnx_ir as ir


@dataclass
class RunResult:
    outputs: dict[str, np.ndarray]
    engine: str  # "onnxruntime" or "onnx.reference"
    fallback_reason: str | None = None


def run_reference(model: ir.Model | onnx.ModelProto, inputs: Mapping[str, np.ndarray]) -> RunResult:
    """Runs ``model`` on ``inputs``; outputs keyed by name in the graph's output order."""
    proto = model if isinstance(model, onnx.ModelProto) else ir.to_proto(model)
    output_names = [output.name for output in proto.graph.output]
    feeds = {name: np.asarray(array) for name, array in inputs.items()}
    try:
        return RunResult(_run_onnxruntime(proto, feeds, output_names), "onnxruntime")
    except Exception as error:  # noqa: BLE001 - any ORT failure sends us to the reference evaluator
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(proto)
    declared = {i.name for i in proto.graph.input}
    results = evaluator.run(None, {k: v for k, v in feeds.items() if k in declared})
    outputs = {name: np.asarray(value) for name, value in zip(output_names, results, strict=True)}
    return RunResult(outputs, "onnx.reference", reason)


def _run_onnxruntime(
    proto: onnx.ModelProto, feeds: dict[str, np.ndarray], output_names: list[str]
) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Optimizations off: the reference must compute exactly what the graph says.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    declared = {i.name for i in session.get_inputs()}
    results = session.run(output_names, {k: v for k, v in feeds.items() if k in declared})
    return {name: np.asarray(value) for name, value in zip(output_names, results, strict=True)}
