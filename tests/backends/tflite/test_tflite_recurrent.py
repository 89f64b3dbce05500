"""RNN, GRU and LSTM in a ``.tflite`` with a dynamic batch and sequence length.

TFLite's builtins hold no TensorList at dynamic shapes, so the steps' outputs are grown into a
tensor in a WHILE loop (``backends/tensorflow/ops/_stacks.py``). Each model is converted once with
its batch and sequence dims dynamic, and run on LiteRT's interpreter at two batch sizes and two
sequence lengths; the oracle is onnxruntime on the source ONNX model, output by output (onnx's
reference evaluator where onnxruntime lacks the attribute: batch-first ``layout=1``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

pytest.importorskip("tf2onnx", reason="the tensorflow extra is not installed")
pytest.importorskip("ai_edge_litert", reason="the tflite extra is not installed")

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from unframe.converters import api  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
F = TensorProto.FLOAT
FEATURES, HIDDEN = 3, 5
#: (sequence length, batch) of each run: both differ between runs.
RUNS = ((4, 2), (7, 3))


def _weight(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.5, name)


def _convert_and_compare(
    tmp_path: Path,
    node: onnx.NodeProto,
    inputs: list[onnx.ValueInfoProto],
    initializers: list[onnx.TensorProto],
    feeds_of: list[dict[str, np.ndarray]],
    *,
    by_reference: bool = False,
) -> None:
    outputs = [helper.make_tensor_value_info(name, F, None) for name in node.output]
    graph = helper.make_graph([node], "g", inputs, outputs, initializers)
    src = tmp_path / "src.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), src)
    written = tmp_path / "model.tflite"
    assert api.convert(src, written).ok
    interpreter = Interpreter(model_path=str(written))
    (x_detail,) = (d for d in interpreter.get_input_details() if "x" in d["name"].split(":")[0])
    assert x_detail["shape_signature"].tolist() == [-1, -1, FEATURES]  # both dims kept dynamic
    runner = interpreter.get_signature_runner("serving_default")
    oracle: ReferenceEvaluator | ort.InferenceSession = (
        ReferenceEvaluator(str(src))
        if by_reference
        else ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    )
    for feeds in feeds_of:
        got = runner(**feeds)
        want = oracle.run(None, feeds)
        assert sorted(got) == sorted(node.output)
        for name, expected in zip(node.output, want, strict=True):
            np.testing.assert_allclose(got[name], expected, rtol=RTOL, atol=ATOL, err_msg=name)


def test_bidirectional_lstm_states_lengths_and_peepholes(tmp_path: Path) -> None:
    """All three outputs, both directions, initial h and c, sequence_lens (shorter sequences
    keep their state and output zeros; the reverse direction runs each within its length)."""
    rng = np.random.default_rng(0)
    node = helper.make_node(
        "LSTM",
        ["x", "w", "r", "b", "lens", "h0", "c0", "p"],
        ["y", "y_h", "y_c"],
        hidden_size=HIDDEN,
        direction="bidirectional",
    )
    inputs = [
        helper.make_tensor_value_info("x", F, ["seq", "batch", FEATURES]),
        helper.make_tensor_value_info("lens", TensorProto.INT32, ["batch"]),
        helper.make_tensor_value_info("h0", F, [2, "batch", HIDDEN]),
        helper.make_tensor_value_info("c0", F, [2, "batch", HIDDEN]),
    ]
    weights = [
        _weight(rng, "w", (2, 4 * HIDDEN, FEATURES)),
        _weight(rng, "r", (2, 4 * HIDDEN, HIDDEN)),
        _weight(rng, "b", (2, 8 * HIDDEN)),
        _weight(rng, "p", (2, 3 * HIDDEN)),
    ]
    feeds = [
        {
            "x": rng.standard_normal((seq, batch, FEATURES)).astype(np.float32),
            "lens": rng.integers(1, seq + 1, batch).astype(np.int32),
            "h0": rng.standard_normal((2, batch, HIDDEN)).astype(np.float32),
            "c0": rng.standard_normal((2, batch, HIDDEN)).astype(np.float32),
        }
        for seq, batch in RUNS
    ]
    feeds[1]["lens"][0] = RUNS[1][0]  # one sequence at full length
    _convert_and_compare(tmp_path, node, inputs, weights, feeds)


def test_gru_reverse_linear_before_reset(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    node = helper.make_node(
        "GRU",
        ["x", "w", "r", "b"],
        ["y", "y_h"],
        hidden_size=HIDDEN,
        direction="reverse",
        linear_before_reset=1,
    )
    inputs = [helper.make_tensor_value_info("x", F, ["seq", "batch", FEATURES])]
    weights = [
        _weight(rng, "w", (1, 3 * HIDDEN, FEATURES)),
        _weight(rng, "r", (1, 3 * HIDDEN, HIDDEN)),
        _weight(rng, "b", (1, 6 * HIDDEN)),
    ]
    feeds = [
        {"x": rng.standard_normal((seq, batch, FEATURES)).astype(np.float32)} for seq, batch in RUNS
    ]
    _convert_and_compare(tmp_path, node, inputs, weights, feeds)


def test_batch_first_bidirectional_rnn_with_initial_state(tmp_path: Path) -> None:
    """layout=1 (batch first): x is [batch, seq, features], the states [batch, dirs, hidden]."""
    rng = np.random.default_rng(2)
    node = helper.make_node(
        "RNN",
        ["x", "w", "r", "b", "", "h0"],
        ["y", "y_h"],
        hidden_size=HIDDEN,
        direction="bidirectional",
        layout=1,
    )
    inputs = [
        helper.make_tensor_value_info("x", F, ["batch", "seq", FEATURES]),
        helper.make_tensor_value_info("h0", F, ["batch", 2, HIDDEN]),
    ]
    weights = [
        _weight(rng, "w", (2, HIDDEN, FEATURES)),
        _weight(rng, "r", (2, HIDDEN, HIDDEN)),
        _weight(rng, "b", (2, 2 * HIDDEN)),
    ]
    feeds = [
        {
            "x": rng.standard_normal((batch, seq, FEATURES)).astype(np.float32),
            "h0": rng.standard_normal((batch, 2, HIDDEN)).astype(np.float32),
        }
        for seq, batch in RUNS
    ]
    _convert_and_compare(tmp_path, node, inputs, weights, feeds, by_reference=True)
