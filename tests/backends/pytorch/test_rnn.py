"""LSTM/GRU/RNN against onnxruntime: bidirectional, sequence_lens, initial state, clip."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from unframe.converters.adapters.pytorch import PyTorchFramework  # noqa: E402

CASES = [
    ("LSTM", 4, {}),
    ("LSTM", 4, {"clip": 0.5}),
    ("GRU", 3, {}),
    ("GRU", 3, {"linear_before_reset": 1}),
    ("RNN", 1, {"activations": ["Relu", "Tanh"]}),
]


@pytest.mark.parametrize(("kind", "gates", "attrs"), CASES)
def test_bidirectional_with_sequence_lens_matches_onnxruntime(
    kind: str, gates: int, attrs: dict[str, object]
) -> None:
    rng = np.random.default_rng(0)
    hidden, inputs, batch, steps, dirs = 3, 4, 2, 5, 2
    weights = {
        "W": rng.standard_normal((dirs, gates * hidden, inputs)).astype(np.float32),
        "R": rng.standard_normal((dirs, gates * hidden, hidden)).astype(np.float32),
        "B": rng.standard_normal((dirs, 2 * gates * hidden)).astype(np.float32),
    }
    feeds = {
        "X": rng.standard_normal((steps, batch, inputs)).astype(np.float32),
        "sl": np.array([5, 3], dtype=np.int32),
        "h0": rng.standard_normal((dirs, batch, hidden)).astype(np.float32),
    }
    outputs = ["Y", "Y_h"] + (["Y_c"] if kind == "LSTM" else [])
    node = helper.make_node(
        kind,
        ["X", "W", "R", "B", "sl", "h0"],
        outputs,
        hidden_size=hidden,
        direction="bidirectional",
        **attrs,
    )
    graph = helper.make_graph(
        [node],
        "rnn",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, feeds["X"].shape),
            helper.make_tensor_value_info("sl", TensorProto.INT32, [batch]),
            helper.make_tensor_value_info("h0", TensorProto.FLOAT, feeds["h0"].shape),
        ],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [onnx.numpy_helper.from_array(a, n) for n, a in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = session.run(None, feeds)
    got = list(PyTorchFramework().run_ir(ir.from_proto(model), feeds).values())
    assert len(got) == len(want)
    for actual, expected in zip(got, want, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
