"""ONNX function ops the Caffe2 backend has no converter for, converted through their bodies.

Oracle: onnxruntime on the source model, against the nets run on the Caffe2 executor.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from unframe.backends.caffe2.driver import export_registry, unsupported
from unframe.converters.adapters.caffe2 import Caffe2Framework
from unframe.shared_ir.options import ConvertOptions

ort = pytest.importorskip("onnxruntime")


def test_attention_converts_through_its_body() -> None:
    assert not export_registry().supports("Attention", 23)
    node = helper.make_node(
        "Attention", ["q", "k", "v"], ["y"], name="attn", q_num_heads=2, kv_num_heads=2
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 4, 6]) for n in "qkv"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 6])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    assert unsupported(ir.from_proto(proto)) == []
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal((2, 4, 6)).astype(np.float32) for n in "qkv"}
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = session.run(None, feeds)
    got = Caffe2Framework().run_ir(ir.from_proto(proto), feeds, ConvertOptions())["y"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
