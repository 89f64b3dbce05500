"""A SavedModel unframe wrote reads back with the ONNX graph's input/output names and order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

import unframe  # noqa: E402


def _model(path: Path) -> None:
    # Outputs out of alphabetical order, and names a TF signature key cannot hold.
    x = helper.make_tensor_value_info("zeta.in", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("alpha-in", TensorProto.FLOAT, ["batch", 3])
    first = helper.make_tensor_value_info("softmax:out", TensorProto.FLOAT, None)
    second = helper.make_tensor_value_info("r65", TensorProto.FLOAT, None)
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["zeta.in", "alpha-in"], ["sum"]),
            helper.make_node("Softmax", ["sum"], ["softmax:out"]),
            helper.make_node("Neg", ["zeta.in"], ["r65"]),
        ],
        "g",
        [x, y],
        [first, second],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_names_and_order_come_back(tmp_path: Path) -> None:
    source = tmp_path / "m.onnx"
    _model(source)
    written = tmp_path / "m.savedmodel"
    back = tmp_path / "back.onnx"
    unframe.convert(source, written, target="tensorflow")
    unframe.convert(written, back, source="tensorflow")
    model = onnx.load(back)
    assert [v.name for v in model.graph.input] == ["zeta.in", "alpha-in"]
    assert [v.name for v in model.graph.output] == ["softmax:out", "r65"]
    rng = np.random.default_rng(0)
    feeds = {
        name: rng.standard_normal((2, 3)).astype(np.float32) for name in ("zeta.in", "alpha-in")
    }
    want = ort.InferenceSession(str(source)).run(None, feeds)
    got = ort.InferenceSession(str(back)).run(None, feeds)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
