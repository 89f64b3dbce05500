"""ONNX function ops the TensorFlow backend has no converter for, converted through their bodies.

Oracle: onnxruntime on the source ONNX model (rtol 1e-4, atol 1e-5), which runs Attention and
RMSNormalization with its own kernels.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed")
ort = pytest.importorskip("onnxruntime")

from unframe.backends.tensorflow import run_built, to_tensorflow  # noqa: E402
from unframe.backends.tensorflow.driver import export_registry, unsupported  # noqa: E402
from unframe.shared_ir.errors import UnsupportedOpsError  # noqa: E402


def _attention_model() -> onnx.ModelProto:
    nodes = [
        helper.make_node("RMSNormalization", ["x", "scale"], ["normed"], name="norm"),
        helper.make_node(
            "Attention", ["normed", "normed", "normed"], ["y"], name="attn", q_num_heads=2,
            kv_num_heads=2, is_causal=1,
        ),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 5, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 5, 8])],
        initializer=[
            helper.make_tensor("scale", TensorProto.FLOAT, [8], np.linspace(0.5, 1.5, 8).tolist())
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])


def test_attention_and_rms_normalization_convert_through_their_bodies() -> None:
    registry = export_registry()
    assert not registry.supports("Attention", 23) and not registry.supports("RMSNormalization", 23)
    proto = _attention_model()
    assert unsupported(ir.from_proto(proto)) == []
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    built = to_tensorflow(ir.from_proto(proto))
    names = {op.name for op in built.function.graph.get_operations()}
    assert any(name.startswith("attn/MatMul_0") for name in names), sorted(names)[:20]
    rng = np.random.default_rng(0)
    for batch in (1, 3):  # the batch dim stays dynamic through the bodies
        x = rng.standard_normal((batch, 5, 8)).astype(np.float32)
        (want,) = session.run(None, {"x": x})
        got = run_built(built, {"x": x})["y"]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_an_op_with_neither_converter_nor_body_is_still_refused_by_name() -> None:
    graph = helper.make_graph(
        [
            helper.make_node("RMSNormalization", ["x", "s"], ["n"], name="norm"),
            helper.make_node("Unknown", ["n"], ["y"], name="custom", domain="com.example"),
        ],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 3]),
            helper.make_tensor_value_info("s", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    imports = [helper.make_opsetid("", 23), helper.make_opsetid("com.example", 1)]
    model = ir.from_proto(helper.make_model(graph, opset_imports=imports))
    found = unsupported(model)
    assert [(op.node, op.op_type) for op in found] == [("custom", "Unknown")]
    with pytest.raises(UnsupportedOpsError) as raised:
        to_tensorflow(model)
    assert [(op.node, op.op_type) for op in raised.value.ops] == [("custom", "Unknown")]
