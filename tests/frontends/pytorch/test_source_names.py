"""A ``.pt2`` that unframe wrote reads back with the source ONNX names (inputs, outputs, weights).

The source is an ONNX model whose names torch would sanitize (``image:0``, ``encoder/dense:0/W``) or
that torch.onnx itself hands out (a weight named ``matmul``, an output named ``relu``); onnxruntime
on the source is the oracle for the values.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnx.helper as oh
import onnx_ir as ir
import onnxruntime as ort
import pytest

pytest.importorskip("torch")

from unframe.backends.pytorch import save_pt2  # noqa: E402
from unframe.frontends.pytorch import load_pytorch  # noqa: E402

_FLOAT = onnx.TensorProto.FLOAT


def _source() -> onnx.ModelProto:
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        values = rng.standard_normal(shape).astype(np.float32)
        return oh.make_tensor(name, _FLOAT, list(shape), values.reshape(-1))

    nodes = [
        oh.make_node("MatMul", ["image:0", "encoder/dense:0/W"], ["mm out"], name="dense/MatMul"),
        oh.make_node("Add", ["mm out", "encoder.bias"], ["pre act"], name="dense/BiasAdd"),
        oh.make_node("Relu", ["pre act"], ["hidden"], name="act/Relu"),
        oh.make_node("MatMul", ["hidden", "matmul"], ["relu"], name="head/MatMul"),
        oh.make_node("Sigmoid", ["relu"], ["probs"], name="head/Sigmoid"),
    ]
    graph = oh.make_graph(
        nodes,
        "named",
        [oh.make_tensor_value_info("image:0", _FLOAT, ["N", 4])],
        [
            oh.make_tensor_value_info("relu", _FLOAT, ["N", 2]),
            oh.make_tensor_value_info("probs", _FLOAT, ["N", 2]),
            oh.make_tensor_value_info("hidden", _FLOAT, ["N", 3]),
        ],
        initializer=[weight("encoder/dense:0/W", 4, 3), weight("encoder.bias", 3), weight("matmul", 3, 2)],
    )  # fmt: skip
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", 18)])


def _onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def test_onnx_to_pt2_to_onnx_keeps_the_source_names(tmp_path: Path) -> None:
    source = _source()
    pt2 = tmp_path / "named.pt2"
    save_pt2(ir.from_proto(source), pt2)
    model = load_pytorch(pt2)

    assert [v.name for v in model.graph.inputs] == ["image:0"]
    assert [v.name for v in model.graph.outputs] == ["relu", "probs", "hidden"]
    assert {"encoder/dense:0/W", "encoder.bias", "matmul"} <= set(model.graph.initializers)
    np.testing.assert_array_equal(
        model.graph.initializers["encoder/dense:0/W"].const_value.numpy(),
        onnx.numpy_helper.to_array(source.graph.initializer[0]),
    )
    names = [v.name for node in model.graph for v in node.outputs]
    assert len(names) == len(set(names)), "a value name is given twice"

    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    want = _onnxruntime(source, {"image:0": x})
    got = _onnxruntime(ir.to_proto(model), {"image:0": x})
    assert list(got) == list(want)
    for name, expected in want.items():
        np.testing.assert_allclose(got[name], expected, rtol=1e-5, atol=1e-6)


def test_a_pt2_with_a_malformed_names_record_keeps_torchs_names(tmp_path: Path) -> None:
    pt2 = tmp_path / "named.pt2"
    save_pt2(ir.from_proto(_source()), pt2)
    forged = tmp_path / "forged.pt2"
    with zipfile.ZipFile(pt2) as original, zipfile.ZipFile(forged, "w") as copy:
        for member in original.infolist():
            data = original.read(member)
            if member.filename.endswith("/extra/unframe.json"):
                data = b'{"inputs": [42], "outputs": "probs", "initializers": []}'
            copy.writestr(member, data)
    model = load_pytorch(forged)
    assert [v.name for v in model.graph.inputs] == ["image_0"]
    assert "encoder/dense:0/W" not in model.graph.initializers
