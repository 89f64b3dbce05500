"""ONNX function ops the Core ML backend has no converter for, converted through their bodies.

Oracle: onnxruntime on the source model, against the package re-imported through the frontend
and run on onnxruntime (Core ML itself runs only on macOS; ``CoreMLFramework.run_ir``).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from unframe.backends.coreml.driver import export_registry
from unframe.converters.adapters.coreml import CoreMLFramework
from unframe.shared_ir.options import ConvertOptions

pytest.importorskip("coremltools", reason="the coreml extra is not installed")
ort = pytest.importorskip("onnxruntime")


def test_rms_and_mean_variance_normalization_convert_through_their_bodies() -> None:
    registry = export_registry()
    assert not registry.supports("RMSNormalization", 23)
    assert not registry.supports("MeanVarianceNormalization", 23)
    graph = helper.make_graph(
        [
            helper.make_node("RMSNormalization", ["x", "scale"], ["n"], name="rms", epsilon=1e-3),
            helper.make_node("MeanVarianceNormalization", ["n"], ["y"], name="mvn", axes=[0, 2]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 6])],
        initializer=[
            helper.make_tensor("scale", TensorProto.FLOAT, [6], np.linspace(0.5, 2, 6).tolist())
        ],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    framework = CoreMLFramework()
    model = ir.from_proto(proto)
    assert framework.unsupported_nodes(model) == []
    x = np.random.default_rng(0).standard_normal((2, 3, 6)).astype(np.float32)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = session.run(None, {"x": x})
    got = framework.run_ir(model, {"x": x}, ConvertOptions())["y"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
